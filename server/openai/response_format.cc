#include "server/openai/response_format.h"

#include "absl/strings/str_cat.h"

namespace fox {
namespace {

using nlohmann::json;

bool IsChat(const ResponseHeader& header) { return header.api == GenerationRequest::Api::kChat; }

json Head(const ResponseHeader& header, const char* object) {
  return {
      {"id", header.id}, {"object", object}, {"created", header.created}, {"model", header.model}};
}

std::string TokenText(const Tokenizer& tokenizer, int32_t id) {
  absl::StatusOr<std::string> text = tokenizer.Decode({&id, 1});
  return text.ok() ? *text : std::string();
}

json Bytes(const std::string& text) {
  json bytes = json::array();
  for (const unsigned char c : text) bytes.push_back(static_cast<int>(c));
  return bytes;
}

}  // namespace

void TokenLogprobs::Add(const TokenEvent& event) {
  token_ids.push_back(event.token_id);
  logprobs.push_back(event.logprob);
  top.push_back(event.top_logprobs);
}

void TokenLogprobs::clear() {
  token_ids.clear();
  logprobs.clear();
  top.clear();
}

json CompletionLogprobs(const TokenLogprobs& logprobs, const Tokenizer& tokenizer,
                        int64_t text_offset) {
  json tokens = json::array(), token_logprobs = json::array(), top = json::array(),
       offsets = json::array();
  for (size_t i = 0; i < logprobs.token_ids.size(); ++i) {
    const std::string text = TokenText(tokenizer, logprobs.token_ids[i]);
    tokens.push_back(text);
    token_logprobs.push_back(logprobs.logprobs[i]);
    // OpenAI's and vLLM's alternatives always hold the sampled token too.
    json alternatives = json::object();
    for (const TopLogprob& t : logprobs.top[i]) {
      alternatives[TokenText(tokenizer, t.token_id)] = t.logprob;
    }
    alternatives[text] = logprobs.logprobs[i];
    top.push_back(std::move(alternatives));
    offsets.push_back(text_offset);
    text_offset += NumCharacters(text);
  }
  return {{"tokens", tokens},
          {"token_logprobs", token_logprobs},
          {"top_logprobs", top},
          {"text_offset", offsets}};
}

json ChatLogprobs(const TokenLogprobs& logprobs, const Tokenizer& tokenizer) {
  json content = json::array();
  for (size_t i = 0; i < logprobs.token_ids.size(); ++i) {
    const std::string text = TokenText(tokenizer, logprobs.token_ids[i]);
    json top = json::array();
    for (const TopLogprob& t : logprobs.top[i]) {
      const std::string alt = TokenText(tokenizer, t.token_id);
      top.push_back({{"token", alt}, {"logprob", t.logprob}, {"bytes", Bytes(alt)}});
    }
    content.push_back({{"token", text},
                       {"logprob", logprobs.logprobs[i]},
                       {"bytes", Bytes(text)},
                       {"top_logprobs", std::move(top)}});
  }
  return {{"content", std::move(content)}};
}

std::string FinishReasonText(const TokenEvent& finish) {
  return std::string(FinishReasonName(finish.finish_reason));
}

json StopReason(const TokenEvent& finish) {
  if (finish.stop_string.has_value()) return *finish.stop_string;
  if (finish.stop_token_id.has_value()) return *finish.stop_token_id;
  return nullptr;
}

json Usage(int64_t prompt_tokens, int64_t completion_tokens) {
  return {{"prompt_tokens", prompt_tokens},
          {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens}};
}

json StreamChunk(const ResponseHeader& header, int index, const std::string& text, bool role,
                 json logprobs, const TokenEvent* finish) {
  json choice = {{"index", index}, {"logprobs", std::move(logprobs)}};
  if (IsChat(header)) {
    json delta = json::object();
    if (role) delta["role"] = "assistant";
    if (role || !text.empty() || finish == nullptr) delta["content"] = text;
    choice["delta"] = std::move(delta);
  } else {
    choice["text"] = text;
  }
  choice["finish_reason"] = finish != nullptr ? json(FinishReasonText(*finish)) : json(nullptr);
  choice["stop_reason"] = finish != nullptr ? StopReason(*finish) : json(nullptr);
  json chunk = Head(header, IsChat(header) ? "chat.completion.chunk" : "text_completion");
  chunk["choices"] = json::array({std::move(choice)});
  return chunk;
}

json UsageChunk(const ResponseHeader& header, const json& usage) {
  json chunk = Head(header, IsChat(header) ? "chat.completion.chunk" : "text_completion");
  chunk["choices"] = json::array();
  chunk["usage"] = usage;
  return chunk;
}

json FullChoice(const ResponseHeader& header, int index, const std::string& text, json logprobs,
                const TokenEvent& finish) {
  json choice = {{"index", index}};
  if (IsChat(header)) {
    choice["message"] = {{"role", "assistant"}, {"content", text}};
  } else {
    choice["text"] = text;
  }
  choice["logprobs"] = std::move(logprobs);
  choice["finish_reason"] = FinishReasonText(finish);
  choice["stop_reason"] = StopReason(finish);
  return choice;
}

json FullResponse(const ResponseHeader& header, json choices, const json& usage) {
  json response = Head(header, IsChat(header) ? "chat.completion" : "text_completion");
  response["choices"] = std::move(choices);
  response["usage"] = usage;
  return response;
}

int64_t NumCharacters(const std::string& text) {
  int64_t n = 0;
  for (const unsigned char c : text) n += (c & 0xC0) != 0x80;  // lead bytes
  return n;
}

std::string SseEvent(const json& data) {
  return absl::StrCat("data: ", data.dump(-1, ' ', false, json::error_handler_t::replace), "\n\n");
}

}  // namespace fox
