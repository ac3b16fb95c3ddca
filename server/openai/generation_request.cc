#include "server/openai/generation_request.h"

#include <cmath>
#include <limits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "models/bounded_json.h"
#include "server/openai/api_error.h"
#include "server/openai/json_fields.h"
#include "server/openai/request_fields.h"
#include "server/openai/request_id.h"

namespace fox {
namespace {

using nlohmann::json;

// vLLM's bounds for n, beyond which a request is surely a mistake.
constexpr int64_t kMaxChoices = 128;
// Prompts in one completions batch, and engine requests per call (prompts x
// n): each is a stream on the connection and a slot in the engine's queue.
constexpr size_t kMaxPrompts = 256;
constexpr int64_t kMaxRequestsPerCall = 256;
// Messages in one chat request (OpenAI's own limit).
constexpr size_t kMaxMessages = 2048;

// A client's double as a float; beyond float's range it becomes an infinity
// (which validation then refuses), never an out-of-range conversion.
float ToFloat(double x) {
  constexpr double kMax = std::numeric_limits<float>::max();
  if (x > kMax) return std::numeric_limits<float>::infinity();
  if (x < -kMax) return -std::numeric_limits<float>::infinity();
  return static_cast<float>(x);
}

absl::StatusOr<std::vector<int32_t>> TokenIds(const json& list, const ServingContext& context,
                                              absl::string_view where) {
  std::vector<int32_t> ids;
  ids.reserve(list.size());
  const int vocab_size = context.model_config().vocab_size;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::optional<int64_t> id = IntegerIn(list[i], 0, vocab_size - 1);
    if (!id.has_value()) {
      return InvalidParam("prompt", absl::StrCat(where, "[", i, "] must be a token id in [0, ",
                                                 vocab_size, "), got ", Describe(list[i])));
    }
    ids.push_back(static_cast<int32_t>(*id));
  }
  if (ids.empty()) return InvalidParam("prompt", absl::StrCat(where, " is empty"));
  return ids;
}

absl::Status AddTextPrompt(const std::string& text, bool add_bos, absl::string_view where,
                           const ServingContext& context, GenerationRequest& request) {
  if (text.empty()) return InvalidParam("prompt", absl::StrCat(where, " is empty"));
  absl::StatusOr<std::vector<int32_t>> ids = context.tokenizer().Encode(text, add_bos);
  if (!ids.ok()) return WithParam(ids.status(), "prompt");
  request.prompts.push_back(std::move(*ids));
  request.prompt_texts.push_back(text);
  return absl::OkStatus();
}

// prompt: "text" | ["text", ...] | [id, ...] | [[id, ...], ...]
absl::Status ParsePrompts(const json& body, bool add_bos, const ServingContext& context,
                          GenerationRequest& request) {
  const auto it = body.find("prompt");
  if (it == body.end() || it->is_null()) return InvalidParam("prompt", "prompt is required");
  const json& prompt = *it;
  if (prompt.is_string())
    return AddTextPrompt(prompt.get<std::string>(), add_bos, "prompt", context, request);
  if (!prompt.is_array()) {
    return InvalidParam("prompt", absl::StrCat("prompt must be a string, a list of strings or ",
                                               "a list of token ids, got ", Describe(prompt)));
  }
  if (prompt.empty()) return InvalidParam("prompt", "prompt is an empty list");
  if (prompt[0].is_number()) {
    absl::StatusOr<std::vector<int32_t>> ids = TokenIds(prompt, context, "prompt");
    if (!ids.ok()) return ids.status();
    request.prompts.push_back(std::move(*ids));
    request.prompt_texts.emplace_back();  // decoded on demand, for echo
    return absl::OkStatus();
  }
  if (prompt.size() > kMaxPrompts) {
    return InvalidParam("prompt", absl::StrCat("prompt may hold at most ", kMaxPrompts,
                                               " prompts, got ", prompt.size()));
  }
  for (size_t i = 0; i < prompt.size(); ++i) {
    const std::string where = absl::StrCat("prompt[", i, "]");
    if (prompt[i].is_string()) {
      if (absl::Status s =
              AddTextPrompt(prompt[i].get<std::string>(), add_bos, where, context, request);
          !s.ok()) {
        return s;
      }
    } else if (prompt[i].is_array()) {
      absl::StatusOr<std::vector<int32_t>> ids = TokenIds(prompt[i], context, where);
      if (!ids.ok()) return ids.status();
      request.prompts.push_back(std::move(*ids));
      request.prompt_texts.emplace_back();
    } else {
      return InvalidParam("prompt", absl::StrCat(where, " must be a string or a list of token ",
                                                 "ids, got ", Describe(prompt[i])));
    }
  }
  return absl::OkStatus();
}

// stop: "s" | ["s", ...]
void ParseStop(JsonFields& fields, SamplingParams& params) {
  const json* stop = fields.Find("stop");
  if (stop == nullptr) return;
  if (stop->is_string()) {
    params.stop.push_back(stop->get<std::string>());
    return;
  }
  if (stop->is_array()) {
    if (stop->size() > kMaxStopStrings) {
      return fields.Fail("stop", absl::StrCat("stop may hold at most ", kMaxStopStrings,
                                              " strings, got ", stop->size()));
    }
    for (const json& s : *stop) {
      if (!s.is_string()) return fields.Fail("stop", "stop must be a string or a list of strings");
      params.stop.push_back(s.get<std::string>());
    }
    return;
  }
  fields.Fail("stop",
              absl::StrCat("stop must be a string or a list of strings, got ", Describe(*stop)));
}

void ParseTokenIdList(JsonFields& fields, absl::string_view name, std::vector<int32_t>& out) {
  const json* list = fields.Find(name);
  if (list == nullptr) return;
  if (!list->is_array())
    return fields.Fail(name, absl::StrCat(name, " must be a list of token ids"));
  if (list->size() > kMaxStopTokenIds) {
    return fields.Fail(name, absl::StrCat(name, " may hold at most ", kMaxStopTokenIds,
                                          " ids, got ", list->size()));
  }
  for (const json& value : *list) {
    const std::optional<int64_t> id = IntegerIn(value, std::numeric_limits<int32_t>::min(),
                                                std::numeric_limits<int32_t>::max());
    if (!id.has_value()) {
      return fields.Fail(name,
                         absl::StrCat(name, " must be a list of token ids, got ", Describe(value)));
    }
    out.push_back(static_cast<int32_t>(*id));
  }
}

// logit_bias: {"50256": -100, ...}
void ParseLogitBias(JsonFields& fields, SamplingParams& params) {
  const json* bias = fields.Find("logit_bias");
  if (bias == nullptr) return;
  if (!bias->is_object())
    return fields.Fail("logit_bias", "logit_bias must be an object mapping token ids to biases");
  if (bias->size() > kMaxLogitBiasEntries) {
    return fields.Fail("logit_bias", absl::StrCat("logit_bias may hold at most ",
                                                  kMaxLogitBiasEntries, " entries, got ",
                                                  bias->size()));
  }
  for (const auto& [key, value] : bias->items()) {
    int32_t id;
    if (!absl::SimpleAtoi(key, &id)) {
      return fields.Fail("logit_bias", "logit_bias keys must be token ids (decimal strings)");
    }
    if (!value.is_number()) {
      return fields.Fail("logit_bias", absl::StrCat("logit_bias[\"", id,
                                                    "\"] must be a number, got ", Describe(value)));
    }
    params.logit_bias.emplace_back(id, ToFloat(value.get<double>()));
  }
}

// The fields both APIs share: model, sampling, stopping, n, stream.
absl::Status ParseCommon(const ServingContext& context, JsonFields& fields,
                         GenerationRequest& request) {
  if (std::optional<std::string> model = fields.String("model")) {
    if (*model != context.model_name()) {
      const std::string shown = model->size() <= 64 ? *model : model->substr(0, 61) + "...";
      return WithParam(absl::NotFoundError(absl::StrCat("The model `", shown,
                                                        "` does not exist; this server serves `",
                                                        context.model_name(), "`")),
                       "model");
    }
  }
  request.model = context.model_name();
  SamplingParams& params = request.params;
  auto set_float = [&](absl::string_view name, float& target) {
    if (std::optional<double> x = fields.Number(name)) target = ToFloat(*x);
  };
  set_float("temperature", params.temperature);
  set_float("top_p", params.top_p);
  set_float("min_p", params.min_p);
  set_float("presence_penalty", params.presence_penalty);
  set_float("frequency_penalty", params.frequency_penalty);
  set_float("repetition_penalty", params.repetition_penalty);
  // top_k: -1 or 0 is off.
  if (std::optional<int64_t> k = fields.Integer("top_k", -1, std::numeric_limits<int32_t>::max())) {
    params.top_k = static_cast<int32_t>(*k);
  }
  if (std::optional<uint64_t> seed = fields.Seed("seed")) params.seed = *seed;
  if (std::optional<int64_t> m = fields.Integer("min_tokens", 0)) params.min_tokens = *m;
  if (std::optional<bool> b = fields.Bool("ignore_eos")) params.ignore_eos = *b;
  if (std::optional<bool> b = fields.Bool("include_stop_str_in_output")) {
    params.include_stop_str_in_output = *b;
  }
  ParseStop(fields, params);
  ParseTokenIdList(fields, "stop_token_ids", params.stop_token_ids);
  ParseLogitBias(fields, params);
  if (std::optional<int64_t> n = fields.Integer("n", 1, kMaxChoices)) {
    request.n = static_cast<int32_t>(*n);
  }
  if (std::optional<int64_t> best_of = fields.Integer("best_of", 1, kMaxChoices);
      best_of && *best_of != request.n) {
    fields.Fail("best_of", "best_of other than n is not supported");
  }
  if (std::optional<bool> s = fields.Bool("stream")) request.stream = *s;
  if (const json* options = fields.Find("stream_options")) {
    if (!options->is_object()) {
      fields.Fail("stream_options", "stream_options must be an object");
    } else {
      JsonFields option_fields(*options);
      if (std::optional<bool> u = option_fields.Bool("include_usage")) request.include_usage = *u;
      if (!option_fields.status().ok()) {
        fields.Fail("stream_options",
                    absl::StrCat("stream_options.", option_fields.status().message()));
      }
      if (option_fields.Bool("continuous_usage_stats").value_or(false)) {
        fields.Fail("stream_options",
                    "stream_options.continuous_usage_stats is not supported by this server");
      }
      if (!request.stream) fields.Fail("stream_options", "stream_options needs stream set to true");
    }
  }
  return fields.status();
}

// messages: [{"role": ..., "content": "text" | [{"type": "text", "text": ...}]}]
absl::StatusOr<std::vector<ChatMessage>> ParseMessages(JsonFields& fields) {
  const json* messages = fields.Find("messages");
  if (messages == nullptr) return InvalidParam("messages", "messages is required");
  if (!messages->is_array() || messages->empty()) {
    return InvalidParam("messages", "messages must be a non-empty list of {role, content} objects");
  }
  if (messages->size() > kMaxMessages) {
    return InvalidParam("messages", absl::StrCat("messages may hold at most ", kMaxMessages,
                                                 " messages, got ", messages->size()));
  }
  std::vector<ChatMessage> chat;
  for (size_t i = 0; i < messages->size(); ++i) {
    const json& m = (*messages)[i];
    const std::string where = absl::StrCat("messages[", i, "]");
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
      return InvalidParam("messages", absl::StrCat(where, " must be an object with a string role"));
    }
    ChatMessage message{m["role"].get<std::string>(), ""};
    const auto content = m.find("content");
    if (content == m.end() || content->is_null()) {
      // An assistant turn may carry no content (tool calls); anything else must.
      if (message.role != "assistant") {
        return InvalidParam("messages", absl::StrCat(where, ".content is required"));
      }
    } else if (content->is_string()) {
      message.content = content->get<std::string>();
    } else if (content->is_array()) {
      for (const json& part : *content) {  // [{"type": "text", "text": "..."}]
        if (!part.is_object() || !part.contains("type") || part["type"] != "text" ||
            !part.contains("text") || !part["text"].is_string()) {
          return InvalidParam("messages", absl::StrCat(where, ".content parts must be ",
                                                       "{\"type\": \"text\", \"text\": ...}; ",
                                                       "this model reads text only"));
        }
        message.content += part["text"].get<std::string>();
      }
    } else {
      return InvalidParam("messages",
                          absl::StrCat(where, ".content must be a string or a list of text parts"));
    }
    chat.push_back(std::move(message));
  }
  return chat;
}

// max_tokens default: 16 for completions (OpenAI's); for chat, what is left
// of the context (vLLM's). Checked against max_model_len by the engine.
void ParseMaxTokens(JsonFields& fields, const ServingContext& context, absl::string_view name,
                    GenerationRequest& request) {
  if (fields.Find(name) != nullptr) {
    if (std::optional<int64_t> m = fields.Integer(name, 1)) request.params.max_tokens = *m;
  } else if (request.api == GenerationRequest::Api::kChat) {
    size_t longest = 0;
    for (const auto& p : request.prompts) longest = std::max(longest, p.size());
    request.params.max_tokens =
        std::max<int64_t>(1, context.max_model_len() - static_cast<int64_t>(longest));
  }
}

// vLLM's truncate_prompt_tokens: keep each prompt's last k tokens (-1: as
// many as max_model_len allows).
void TruncatePrompts(JsonFields& fields, const ServingContext& context,
                     GenerationRequest& request) {
  const std::optional<int64_t> k = fields.Integer("truncate_prompt_tokens", -1);
  if (!k.has_value()) return;
  if (*k == 0) return fields.Fail("truncate_prompt_tokens", "truncate_prompt_tokens must be -1 or at least 1");
  const int64_t keep = *k == -1 ? context.max_model_len() : *k;
  for (std::vector<int32_t>& prompt : request.prompts) {
    if (static_cast<int64_t>(prompt.size()) > keep) {
      prompt.erase(prompt.begin(), prompt.end() - keep);
    }
  }
}

// The last checks once every field is read: max_tokens, the size of the
// whole call, and the engine's own validation of the sampling parameters.
absl::StatusOr<GenerationRequest> Finish(JsonFields& fields, const ServingContext& context,
                                         absl::string_view max_tokens_name,
                                         GenerationRequest& request) {
  TruncatePrompts(fields, context, request);
  ParseMaxTokens(fields, context, max_tokens_name, request);
  if (std::optional<std::string> id = fields.String("request_id")) {
    request.client_request_id = std::move(*id);
  }
  if (!fields.status().ok()) return fields.status();
  if (absl::Status s = CheckClientRequestId(request.client_request_id, "request_id"); !s.ok()) {
    return s;
  }
  const int64_t num_requests = static_cast<int64_t>(request.prompts.size()) * request.n;
  if (num_requests > kMaxRequestsPerCall) {
    return InvalidParam("n", absl::StrCat("prompts x n may be at most ", kMaxRequestsPerCall,
                                          " per request, got ", request.prompts.size(), " x ",
                                          request.n));
  }
  absl::Status status = ValidateSamplingParams(request.params, context.model_config().vocab_size);
  if (!status.ok()) {
    // The engine's messages begin with the parameter's name.
    const absl::string_view message = status.message();
    return WithParam(status, message.substr(0, message.find(' ')));
  }
  return std::move(request);
}

}  // namespace

absl::StatusOr<json> ParseJsonObject(const std::string& body) {
  absl::StatusOr<json> parsed = ParseBoundedJson(body, "the request body");
  if (!parsed.ok()) return parsed.status();
  if (!parsed->is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the request body must be a JSON object, got ", Describe(*parsed)));
  }
  return parsed;
}

absl::StatusOr<GenerationRequest> ParseCompletionRequest(const std::string& body,
                                                         const ServingContext& context) {
  absl::StatusOr<json> parsed = ParseJsonObject(body);
  if (!parsed.ok()) return parsed.status();
  GenerationRequest request;
  request.api = GenerationRequest::Api::kCompletion;
  if (absl::Status s =
          CheckRequestFields(*parsed, RequestApi::kCompletion, &request.unknown_fields);
      !s.ok()) {
    return s;
  }
  JsonFields fields(*parsed);
  if (absl::Status s = ParseCommon(context, fields, request); !s.ok()) return s;
  const bool add_bos = fields.Bool("add_special_tokens").value_or(true);
  if (!fields.status().ok()) return fields.status();
  if (absl::Status s = ParsePrompts(*parsed, add_bos, context, request); !s.ok()) return s;
  if (std::optional<bool> e = fields.Bool("echo")) request.echo = *e;
  if (std::optional<int64_t> lp = fields.Integer("logprobs", 0, kMaxLogprobs)) {
    request.params.logprobs = static_cast<int32_t>(*lp);
  }
  if (request.echo && request.params.logprobs.has_value()) {
    fields.Fail("echo",
                "echo together with logprobs is not supported (prompt logprobs are not computed)");
  }
  return Finish(fields, context, "max_tokens", request);
}

absl::StatusOr<GenerationRequest> ParseChatRequest(const std::string& body,
                                                   const ServingContext& context,
                                                   const ChatTemplate& chat_template) {
  absl::StatusOr<json> parsed = ParseJsonObject(body);
  if (!parsed.ok()) return parsed.status();
  GenerationRequest request;
  request.api = GenerationRequest::Api::kChat;
  if (absl::Status s = CheckRequestFields(*parsed, RequestApi::kChat, &request.unknown_fields);
      !s.ok()) {
    return s;
  }
  JsonFields fields(*parsed);
  if (absl::Status s = ParseCommon(context, fields, request); !s.ok()) return s;
  absl::StatusOr<std::vector<ChatMessage>> chat = ParseMessages(fields);
  if (!chat.ok()) return chat.status();
  bool add_generation_prompt = true;
  if (std::optional<bool> g = fields.Bool("add_generation_prompt")) add_generation_prompt = *g;
  // vLLM's add_special_tokens for chat: BOS on top of what the template adds.
  const bool add_bos =
      chat_template.add_bos || fields.Bool("add_special_tokens").value_or(false);
  if (!fields.status().ok()) return fields.status();
  absl::StatusOr<std::string> prompt = chat_template.Render(*chat, add_generation_prompt);
  if (!prompt.ok()) return prompt.status();
  absl::StatusOr<std::vector<int32_t>> ids = context.tokenizer().Encode(*prompt, add_bos);
  if (!ids.ok()) return WithParam(ids.status(), "messages");
  if (ids->empty()) return InvalidParam("messages", "the messages make an empty prompt");
  request.prompts.push_back(std::move(*ids));
  request.prompt_texts.push_back(std::move(*prompt));
  for (const std::string& s : chat_template.stop) request.params.stop.push_back(s);

  // logprobs: bool, top_logprobs: 0..20 alternatives.
  const bool logprobs = fields.Bool("logprobs").value_or(false);
  const std::optional<int64_t> top = fields.Integer("top_logprobs", 0, kMaxLogprobs);
  if (top.has_value() && !logprobs) {
    fields.Fail("top_logprobs", "top_logprobs needs logprobs set to true");
  }
  if (logprobs) request.params.logprobs = static_cast<int32_t>(top.value_or(0));
  const char* max_name =
      fields.Find("max_completion_tokens") != nullptr ? "max_completion_tokens" : "max_tokens";
  return Finish(fields, context, max_name, request);
}

}  // namespace fox
