// The field tables behind CheckRequestFields. Each field of the OpenAI and
// vLLM request sets is one of:
//   read     parsed by generation_request.cc
//   inert    accepted and has no effect on the output (metadata, hints)
//   no-op    refused unless its value means "nothing"
//   refused  refused whenever present and not null
#include "server/openai/request_fields.h"

#include <functional>
#include <string_view>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "server/openai/api_error.h"

namespace fox {
namespace {

using nlohmann::json;

enum class Kind { kRead, kInert, kNoOp, kRefused };

struct FieldRule {
  Kind kind;
  // kNoOp: true when `value` means "nothing".
  std::function<bool(const json& value)> is_no_op;
  const char* what = "";  // kNoOp/kRefused: what is not implemented
};

bool IsFalse(const json& v) { return v.is_boolean() && !v.get<bool>(); }
bool IsTrue(const json& v) { return v.is_boolean() && v.get<bool>(); }
bool IsEmptyList(const json& v) { return v.is_array() && v.empty(); }
bool IsEmptyObject(const json& v) { return v.is_object() && v.empty(); }
bool IsNumberEqual(const json& v, double x) { return v.is_number() && v.get<double>() == x; }

bool IsTextResponseFormat(const json& v) {
  if (!v.is_object()) return false;
  const auto type = v.find("type");
  return type != v.end() && type->is_string() && type->get<std::string>() == "text";
}

bool IsNoToolChoice(const json& v) {
  return v.is_string() && (v.get<std::string>() == "none" || v.get<std::string>() == "auto");
}

FieldRule Read() { return {Kind::kRead, nullptr}; }
FieldRule Inert() { return {Kind::kInert, nullptr}; }
FieldRule NoOp(std::function<bool(const json&)> is_no_op, const char* what) {
  return {Kind::kNoOp, std::move(is_no_op), what};
}
FieldRule Refused(const char* what) { return {Kind::kRefused, nullptr, what}; }

using FieldTable = std::unordered_map<std::string_view, FieldRule>;

// Fields both APIs share.
void AddCommon(FieldTable& t) {
  for (const char* name :
       {"model", "frequency_penalty", "presence_penalty", "repetition_penalty", "logit_bias",
        "max_tokens", "n", "seed", "stop", "stream", "stream_options", "temperature", "top_p",
        "top_k", "min_p", "stop_token_ids", "include_stop_str_in_output", "ignore_eos",
        "min_tokens", "logprobs", "best_of", "echo", "add_special_tokens",
        "truncate_prompt_tokens", "request_id"}) {
    t.emplace(name, Read());
  }
  // Metadata and scheduling hints that change no token of the output.
  for (const char* name : {"user", "metadata", "store", "service_tier", "cache_salt",
                           "spaces_between_special_tokens"}) {
    t.emplace(name, Inert());
  }
  t.emplace("skip_special_tokens",
            NoOp(IsTrue, "skip_special_tokens false (special tokens are always left out of "
                         "the text)"));
  t.emplace("use_beam_search", NoOp(IsFalse, "beam search"));
  t.emplace("length_penalty", NoOp([](const json& v) { return IsNumberEqual(v, 1.0); },
                                   "length_penalty (it applies to beam search)"));
  t.emplace("priority", NoOp([](const json& v) { return IsNumberEqual(v, 0.0); },
                             "priority scheduling"));
  t.emplace("return_tokens_as_token_ids", NoOp(IsFalse, "return_tokens_as_token_ids"));
  t.emplace("return_token_ids", NoOp(IsFalse, "return_token_ids"));
  t.emplace("response_format",
            NoOp(IsTextResponseFormat, "structured output (response_format other than text)"));
  t.emplace("structured_outputs", Refused("structured output (structured_outputs)"));
  for (const char* name : {"guided_json", "guided_regex", "guided_choice", "guided_grammar",
                           "guided_decoding_backend", "guided_whitespace_pattern"}) {
    t.emplace(name, Refused("guided decoding"));
  }
  t.emplace("prompt_logprobs", Refused("prompt logprobs"));
  t.emplace("allowed_token_ids", Refused("allowed_token_ids"));
  t.emplace("bad_words", Refused("bad_words"));
  t.emplace("logits_processors", Refused("logits processors"));
  t.emplace("prompt_embeds", Refused("prompt embeddings"));
  t.emplace("kv_transfer_params", Refused("KV transfer"));
  t.emplace("vllm_xargs", Refused("vllm_xargs"));
  t.emplace("mm_processor_kwargs", NoOp(IsEmptyObject, "multimodal inputs"));
}

FieldTable CompletionTable() {
  FieldTable t;
  AddCommon(t);
  t.emplace("prompt", Read());
  t.emplace("suffix", Refused("suffix (insertion)"));
  return t;
}

FieldTable ChatTable() {
  FieldTable t;
  AddCommon(t);
  for (const char* name : {"messages", "top_logprobs", "max_completion_tokens",
                           "add_generation_prompt"}) {
    t.insert_or_assign(name, Read());
  }
  t.insert_or_assign("echo", NoOp(IsFalse, "echo on chat completions"));
  t.emplace("tools", NoOp(IsEmptyList, "tool calling (tools)"));
  t.emplace("tool_choice", NoOp(IsNoToolChoice, "tool calling (tool_choice)"));
  t.emplace("parallel_tool_calls", Inert());  // only means something with tools
  t.emplace("functions", NoOp(IsEmptyList, "function calling (functions)"));
  t.emplace("function_call", NoOp(IsNoToolChoice, "function calling (function_call)"));
  t.emplace("chat_template", Refused("a per-request chat_template"));
  t.emplace("chat_template_kwargs", NoOp(IsEmptyObject, "chat_template_kwargs"));
  t.emplace("continue_final_message", NoOp(IsFalse, "continue_final_message"));
  t.emplace("documents", Refused("documents"));
  t.emplace("modalities",
            NoOp([](const json& v) { return v.is_array() && v.size() == 1 && v[0] == "text"; },
                 "output modalities other than text"));
  t.emplace("audio", Refused("audio output"));
  t.emplace("prediction", Refused("predicted outputs"));
  t.emplace("reasoning_effort", Refused("reasoning_effort (this model does not reason)"));
  t.emplace("verbosity", Refused("verbosity"));
  t.emplace("web_search_options", Refused("web search"));
  return t;
}

constexpr size_t kMaxUnknownReported = 16;
constexpr size_t kMaxNameReported = 64;

const FieldTable& TableFor(RequestApi api) {
  static const FieldTable* completion = new FieldTable(CompletionTable());
  static const FieldTable* chat = new FieldTable(ChatTable());
  return api == RequestApi::kCompletion ? *completion : *chat;
}

}  // namespace

absl::Status CheckRequestFields(const json& body, RequestApi api,
                                std::vector<std::string>* unknown) {
  const FieldTable& table = TableFor(api);
  for (const auto& [name, value] : body.items()) {
    const auto it = table.find(name);
    if (it == table.end()) {
      // Reported for a log line: a few names, each cut short, so that a
      // hostile body cannot make the log line large.
      if (unknown != nullptr && unknown->size() < kMaxUnknownReported) {
        unknown->push_back(name.size() <= kMaxNameReported
                               ? name
                               : absl::StrCat(name.substr(0, kMaxNameReported), "..."));
      }
      continue;
    }
    if (value.is_null()) continue;  // null means "unset" for every field
    const FieldRule& rule = it->second;
    if (rule.kind == Kind::kRefused || (rule.kind == Kind::kNoOp && !rule.is_no_op(value))) {
      return InvalidParam(name, absl::StrCat(name, ": ", rule.what,
                                             " is not supported by this server"));
    }
  }
  return absl::OkStatus();
}

}  // namespace fox
