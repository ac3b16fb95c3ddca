// The JSON shapes of OpenAI's completion and chat responses and stream
// chunks, built from the engine's events. Pure functions of their inputs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/request_stream.h"
#include "models/tokenizer.h"
#include "nlohmann/json.hpp"
#include "server/openai/generation_request.h"

namespace fox {

// What identifies one response: its id, creation time and model.
struct ResponseHeader {
  std::string id;
  int64_t created = 0;  // Unix seconds
  std::string model;
  GenerationRequest::Api api = GenerationRequest::Api::kCompletion;
};

// The logprobs of some generated tokens, kept as the engine gave them.
struct TokenLogprobs {
  std::vector<int32_t> token_ids;
  std::vector<float> logprobs;
  std::vector<std::vector<TopLogprob>> top;

  void Add(const TokenEvent& event);
  bool empty() const { return token_ids.empty(); }
  void clear();
};

// Completions' {tokens, token_logprobs, top_logprobs, text_offset}; offsets
// count characters and start at `text_offset`, the characters before these
// tokens.
nlohmann::json CompletionLogprobs(const TokenLogprobs& logprobs, const Tokenizer& tokenizer,
                                  int64_t text_offset);
// Chat's {content: [{token, logprob, bytes, top_logprobs}]}.
nlohmann::json ChatLogprobs(const TokenLogprobs& logprobs, const Tokenizer& tokenizer);

// finish_reason and vLLM's stop_reason (the stop string or token id) of a finish event.
std::string FinishReasonText(const TokenEvent& finish);
nlohmann::json StopReason(const TokenEvent& finish);

nlohmann::json Usage(int64_t prompt_tokens, int64_t completion_tokens);

// One streamed chunk for choice `index`: `text` (completions) or delta
// content (chat; `role` adds "role": "assistant"), optional logprobs, and
// the finish when `finish` is given.
nlohmann::json StreamChunk(const ResponseHeader& header, int index, const std::string& text,
                           bool role, nlohmann::json logprobs, const TokenEvent* finish);
// The chunk that carries only usage, after every choice has finished.
nlohmann::json UsageChunk(const ResponseHeader& header, const nlohmann::json& usage);

// One choice of a complete (non-streamed) response.
nlohmann::json FullChoice(const ResponseHeader& header, int index, const std::string& text,
                          nlohmann::json logprobs, const TokenEvent& finish);
nlohmann::json FullResponse(const ResponseHeader& header, nlohmann::json choices,
                            const nlohmann::json& usage);

// Characters (code points) of UTF-8 text, as OpenAI counts text offsets.
int64_t NumCharacters(const std::string& text);

// "data: <json>\n\n"; invalid UTF-8 (never expected) becomes U+FFFD.
std::string SseEvent(const nlohmann::json& data);

}  // namespace fox
