// An OpenAI completion or chat request, parsed and checked: the prompts as
// token ids, the sampling parameters, and how to answer (stream or not,
// choices per prompt, logprobs, echo). Every error names the request field
// (see api_error.h) and maps to 400, or 404 for an unknown model.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/sampling_params.h"
#include "nlohmann/json.hpp"
#include "server/openai/chat_template.h"
#include "server/serving_context.h"

namespace fox {

struct GenerationRequest {
  enum class Api { kCompletion, kChat };
  Api api = Api::kCompletion;

  std::string model;                          // the served name
  std::vector<std::vector<int32_t>> prompts;  // one entry per prompt
  std::vector<std::string> prompt_texts;      // for echo: the text of each prompt
  SamplingParams params;                      // logprobs: how many alternatives, if any
  int32_t n = 1;                              // choices per prompt
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool echo = false;           // completions: prompt text before the output

  // The client's own id for the request (vLLM's request_id field; the
  // X-Request-Id header takes precedence), for logs and the response header.
  std::string client_request_id;
  // Fields in neither API's set: ignored, and named in one warning log line.
  std::vector<std::string> unknown_fields;
};

// POST /v1/completions. Text prompts are tokenized with a BOS token first;
// token-id prompts are taken as given.
absl::StatusOr<GenerationRequest> ParseCompletionRequest(const std::string& body,
                                                         const ServingContext& context);
// POST /v1/chat/completions, rendering the messages with `chat_template`.
absl::StatusOr<GenerationRequest> ParseChatRequest(const std::string& body,
                                                   const ServingContext& context,
                                                   const ChatTemplate& chat_template);

// The body as a JSON object, nested at most 64 deep (checked while parsing):
// malformed JSON, invalid UTF-8 and numbers beyond a double are errors
// naming the position.
absl::StatusOr<nlohmann::json> ParseJsonObject(const std::string& body);

}  // namespace fox
