#include "server/openai/generation_request.h"

#include <cmath>
#include <limits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/openai/api_error.h"
#include "server/openai/json_fields.h"

namespace fox {
namespace {

using nlohmann::json;

// vLLM's bounds for n, beyond which a request is surely a mistake.
constexpr int64_t kMaxChoices = 128;

absl::StatusOr<std::vector<int32_t>> TokenIds(const json& list, const ServingContext& context,
                                              absl::string_view where) {
  std::vector<int32_t> ids;
  ids.reserve(list.size());
  const int vocab_size = context.model_config().vocab_size;
  for (size_t i = 0; i < list.size(); ++i) {
    const json& id = list[i];
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= vocab_size) {
      return InvalidParam("prompt", absl::StrCat(where, "[", i, "] must be a token id in [0, ",
                                                 vocab_size, "), got ", Describe(id)));
    }
    ids.push_back(static_cast<int32_t>(id.get<int64_t>()));
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
absl::Status ParsePrompts(const json& body, const ServingContext& context,
                          GenerationRequest& request) {
  const auto it = body.find("prompt");
  if (it == body.end() || it->is_null()) return InvalidParam("prompt", "prompt is required");
  const json& prompt = *it;
  if (prompt.is_string())
    return AddTextPrompt(prompt.get<std::string>(), true, "prompt", context, request);
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
  for (size_t i = 0; i < prompt.size(); ++i) {
    const std::string where = absl::StrCat("prompt[", i, "]");
    if (prompt[i].is_string()) {
      if (absl::Status s =
              AddTextPrompt(prompt[i].get<std::string>(), true, where, context, request);
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
  for (const json& id : *list) {
    if (!id.is_number_integer() || id.get<int64_t>() < std::numeric_limits<int32_t>::min() ||
        id.get<int64_t>() > std::numeric_limits<int32_t>::max()) {
      return fields.Fail(name,
                         absl::StrCat(name, " must be a list of token ids, got ", Describe(id)));
    }
    out.push_back(static_cast<int32_t>(id.get<int64_t>()));
  }
}

// logit_bias: {"50256": -100, ...}
void ParseLogitBias(JsonFields& fields, SamplingParams& params) {
  const json* bias = fields.Find("logit_bias");
  if (bias == nullptr) return;
  if (!bias->is_object())
    return fields.Fail("logit_bias", "logit_bias must be an object mapping token ids to biases");
  for (const auto& [key, value] : bias->items()) {
    int32_t id;
    if (!absl::SimpleAtoi(key, &id)) {
      return fields.Fail("logit_bias",
                         absl::StrCat("logit_bias keys must be token ids, got \"", key, "\""));
    }
    if (!value.is_number()) {
      return fields.Fail("logit_bias", absl::StrCat("logit_bias[\"", key,
                                                    "\"] must be a number, got ", Describe(value)));
    }
    params.logit_bias.emplace_back(id, value.get<float>());
  }
}

// The fields both APIs share: model, sampling, stopping, n, stream.
absl::Status ParseCommon(const ServingContext& context, JsonFields& fields,
                         GenerationRequest& request) {
  if (std::optional<std::string> model = fields.String("model")) {
    if (*model != context.model_name()) {
      return WithParam(absl::NotFoundError(absl::StrCat("The model `", *model,
                                                        "` does not exist; this server serves `",
                                                        context.model_name(), "`")),
                       "model");
    }
  }
  request.model = context.model_name();
  SamplingParams& params = request.params;
  auto set_float = [&](absl::string_view name, float& target) {
    if (std::optional<double> x = fields.Number(name)) target = static_cast<float>(*x);
  };
  set_float("temperature", params.temperature);
  set_float("top_p", params.top_p);
  set_float("min_p", params.min_p);
  set_float("presence_penalty", params.presence_penalty);
  set_float("frequency_penalty", params.frequency_penalty);
  set_float("repetition_penalty", params.repetition_penalty);
  if (std::optional<int64_t> k = fields.Integer("top_k")) {
    if (*k < -1 || *k > std::numeric_limits<int32_t>::max()) {
      fields.Fail("top_k", absl::StrCat("top_k must be -1 or 0 (off) or at least 1, got ", *k));
    } else {
      params.top_k = static_cast<int32_t>(*k);
    }
  }
  if (std::optional<int64_t> seed = fields.Integer("seed"))
    params.seed = static_cast<uint64_t>(*seed);
  if (std::optional<int64_t> m = fields.Integer("min_tokens")) params.min_tokens = *m;
  if (std::optional<bool> b = fields.Bool("ignore_eos")) params.ignore_eos = *b;
  if (std::optional<bool> b = fields.Bool("include_stop_str_in_output")) {
    params.include_stop_str_in_output = *b;
  }
  ParseStop(fields, params);
  ParseTokenIdList(fields, "stop_token_ids", params.stop_token_ids);
  ParseLogitBias(fields, params);
  if (std::optional<int64_t> n = fields.Integer("n")) {
    if (*n < 1 || *n > kMaxChoices) {
      fields.Fail("n", absl::StrCat("n must be in [1, ", kMaxChoices, "], got ", *n));
    } else {
      request.n = static_cast<int32_t>(*n);
    }
  }
  if (std::optional<int64_t> best_of = fields.Integer("best_of");
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
      if (!request.stream) fields.Fail("stream_options", "stream_options needs stream set to true");
    }
  }
  return fields.status();
}

// max_tokens default: 16 for completions (OpenAI's); for chat, what is left
// of the context (vLLM's). Checked against max_model_len by the engine.
absl::Status ParseMaxTokens(JsonFields& fields, const ServingContext& context,
                            GenerationRequest& request, absl::string_view name) {
  if (std::optional<int64_t> m = fields.Integer(name)) {
    request.params.max_tokens = *m;
    if (*m < 1) return InvalidParam(name, absl::StrCat(name, " must be at least 1, got ", *m));
  } else if (request.api == GenerationRequest::Api::kChat) {
    size_t longest = 0;
    for (const auto& p : request.prompts) longest = std::max(longest, p.size());
    request.params.max_tokens =
        std::max<int64_t>(1, context.max_model_len() - static_cast<int64_t>(longest));
  }
  return fields.status();
}

absl::Status Finish(GenerationRequest& request, const ServingContext& context) {
  absl::Status status = ValidateSamplingParams(request.params, context.model_config().vocab_size);
  if (!status.ok()) {
    // The engine's messages begin with the parameter's name.
    const absl::string_view message = status.message();
    return WithParam(status, message.substr(0, message.find(' ')));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<json> ParseJsonObject(const std::string& body) {
  json parsed;
  try {
    parsed = json::parse(body);
  } catch (const json::parse_error& e) {
    // e.what() reads "[json.exception.parse_error.101] parse error at line 1, column 9: ...".
    std::string what = e.what();
    const size_t start = what.find("] ");
    if (start != std::string::npos) what = what.substr(start + 2);
    return absl::InvalidArgumentError(absl::StrCat("the request body is not valid JSON: ", what));
  }
  if (!parsed.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the request body must be a JSON object, got ", Describe(parsed)));
  }
  return parsed;
}

absl::StatusOr<GenerationRequest> ParseCompletionRequest(const std::string& body,
                                                         const ServingContext& context) {
  absl::StatusOr<json> parsed = ParseJsonObject(body);
  if (!parsed.ok()) return parsed.status();
  GenerationRequest request;
  request.api = GenerationRequest::Api::kCompletion;
  JsonFields fields(*parsed);
  if (absl::Status s = ParseCommon(context, fields, request); !s.ok()) return s;
  if (absl::Status s = ParsePrompts(*parsed, context, request); !s.ok()) return s;
  if (std::optional<bool> e = fields.Bool("echo")) request.echo = *e;
  if (std::optional<int64_t> lp = fields.Integer("logprobs")) {
    if (*lp < 0 || *lp > kMaxLogprobs) {
      fields.Fail("logprobs",
                  absl::StrCat("logprobs must be in [0, ", kMaxLogprobs, "], got ", *lp));
    } else {
      request.params.logprobs = static_cast<int32_t>(*lp);
    }
  }
  if (request.echo && request.params.logprobs.has_value()) {
    fields.Fail("echo",
                "echo together with logprobs is not supported (prompt logprobs are not computed)");
  }
  if (fields.Find("suffix") != nullptr) fields.Fail("suffix", "suffix is not supported");
  if (absl::Status s = ParseMaxTokens(fields, context, request, "max_tokens"); !s.ok()) return s;
  if (absl::Status s = Finish(request, context); !s.ok()) return s;
  return request;
}

absl::StatusOr<GenerationRequest> ParseChatRequest(const std::string& body,
                                                   const ServingContext& context,
                                                   const ChatTemplate& chat_template) {
  absl::StatusOr<json> parsed = ParseJsonObject(body);
  if (!parsed.ok()) return parsed.status();
  GenerationRequest request;
  request.api = GenerationRequest::Api::kChat;
  JsonFields fields(*parsed);
  if (absl::Status s = ParseCommon(context, fields, request); !s.ok()) return s;

  const json* messages = fields.Find("messages");
  if (messages == nullptr) return InvalidParam("messages", "messages is required");
  if (!messages->is_array() || messages->empty()) {
    return InvalidParam("messages", "messages must be a non-empty list of {role, content} objects");
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
        if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") ||
            !part["text"].is_string()) {
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
  bool add_generation_prompt = true;
  if (std::optional<bool> g = fields.Bool("add_generation_prompt")) add_generation_prompt = *g;
  absl::StatusOr<std::string> prompt = chat_template.Render(chat, add_generation_prompt);
  if (!prompt.ok()) return prompt.status();
  absl::StatusOr<std::vector<int32_t>> ids =
      context.tokenizer().Encode(*prompt, chat_template.add_bos);
  if (!ids.ok()) return WithParam(ids.status(), "messages");
  if (ids->empty()) return InvalidParam("messages", "the messages make an empty prompt");
  request.prompts.push_back(std::move(*ids));
  request.prompt_texts.push_back(std::move(*prompt));
  for (const std::string& s : chat_template.stop) request.params.stop.push_back(s);

  // logprobs: bool, top_logprobs: 0..20 alternatives.
  const bool logprobs = fields.Bool("logprobs").value_or(false);
  const std::optional<int64_t> top = fields.Integer("top_logprobs");
  if (top.has_value()) {
    if (*top < 0 || *top > kMaxLogprobs) {
      fields.Fail("top_logprobs",
                  absl::StrCat("top_logprobs must be in [0, ", kMaxLogprobs, "], got ", *top));
    } else if (!logprobs) {
      fields.Fail("top_logprobs", "top_logprobs needs logprobs set to true");
    }
  }
  if (logprobs) request.params.logprobs = static_cast<int32_t>(top.value_or(0));
  const char* max_name =
      fields.Find("max_completion_tokens") != nullptr ? "max_completion_tokens" : "max_tokens";
  if (absl::Status s = ParseMaxTokens(fields, context, request, max_name); !s.ok()) return s;
  if (absl::Status s = Finish(request, context); !s.ok()) return s;
  return request;
}

}  // namespace fox
