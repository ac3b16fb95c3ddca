// Parsing of completion and chat requests: every field reaches the sampling
// parameters, and every bad value is refused with a message and `param`
// naming the field. Runs against the embedded model's tokenizer and engine.
#include <memory>

#include "engine/engine.h"
#include "gtest/gtest.h"
#include "models/checkpoint.h"
#include "models/tokenizer.h"
#include "server/openai/api_error.h"
#include "server/openai/generation_request.h"
#include "server/openai/openai_error.h"
#include "server/serving_context.h"

namespace fox {
namespace {

constexpr char kModelDir[] = FOX_BINARY_DIR "/share/foxserve/models/fox-tiny";

class OpenAiRequestTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = new Checkpoint(*LoadCheckpoint(kModelDir));
    tokenizer_ = Tokenizer::Load(kModelDir)->release();
    EngineConfig config;
    config.num_kv_blocks = 512;
    config.max_model_len = 64;
    config.cpu_threads = 1;
    engine_ = new Engine(*EngineCore::ForCheckpoint(*model_, tokenizer_, config));
    context_ = new ServingContext(engine_, tokenizer_, "fox-tiny", "");
  }
  static void TearDownTestSuite() {
    delete context_;
    delete engine_;
    delete tokenizer_;
    delete model_;
  }

  static absl::StatusOr<GenerationRequest> Completion(const std::string& body) {
    return ParseCompletionRequest(body, *context_);
  }
  static absl::StatusOr<GenerationRequest> Chat(const std::string& body) {
    return ParseChatRequest(body, *context_, ChatTemplate());
  }
  static void ExpectRefused(const absl::StatusOr<GenerationRequest>& parsed, const std::string& param,
                            const std::string& message_part) {
    ASSERT_FALSE(parsed.ok()) << "expected an error about " << param;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << parsed.status();
    EXPECT_EQ(ParamOf(parsed.status()), param) << parsed.status();
    EXPECT_NE(parsed.status().message().find(message_part), absl::string_view::npos)
        << parsed.status().message();
  }

  static inline Checkpoint* model_ = nullptr;
  static inline Tokenizer* tokenizer_ = nullptr;
  static inline Engine* engine_ = nullptr;
  static inline ServingContext* context_ = nullptr;
};

TEST_F(OpenAiRequestTest, CompletionFieldsReachTheSamplingParameters) {
  absl::StatusOr<GenerationRequest> r = Completion(R"({
      "model": "fox-tiny", "prompt": "Hello world", "max_tokens": 7, "temperature": 0.5,
      "top_p": 0.9, "top_k": 40, "min_p": 0.05, "presence_penalty": 0.5,
      "frequency_penalty": -0.5, "repetition_penalty": 1.2, "seed": 11, "stop": "\n",
      "stop_token_ids": [13], "min_tokens": 2, "ignore_eos": true, "logprobs": 3,
      "logit_bias": {"50256": -100, "13": 2.5}, "include_stop_str_in_output": true,
      "n": 2, "stream": true, "stream_options": {"include_usage": true}})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->api, GenerationRequest::Api::kCompletion);
  ASSERT_EQ(r->prompts.size(), 1u);
  EXPECT_EQ(r->prompts[0], (std::vector<int32_t>{50256, 15496, 995})) << "BOS, then GPT-2 ids";
  const SamplingParams& p = r->params;
  EXPECT_EQ(p.max_tokens, 7);
  EXPECT_FLOAT_EQ(p.temperature, 0.5f);
  EXPECT_FLOAT_EQ(p.top_p, 0.9f);
  EXPECT_EQ(p.top_k, 40);
  EXPECT_FLOAT_EQ(p.min_p, 0.05f);
  EXPECT_FLOAT_EQ(p.presence_penalty, 0.5f);
  EXPECT_FLOAT_EQ(p.frequency_penalty, -0.5f);
  EXPECT_FLOAT_EQ(p.repetition_penalty, 1.2f);
  EXPECT_EQ(p.seed, 11u);
  EXPECT_EQ(p.stop, std::vector<std::string>{"\n"});
  EXPECT_EQ(p.stop_token_ids, std::vector<int32_t>{13});
  EXPECT_EQ(p.min_tokens, 2);
  EXPECT_TRUE(p.ignore_eos);
  EXPECT_EQ(p.logprobs, 3);
  EXPECT_TRUE(p.include_stop_str_in_output);
  ASSERT_EQ(p.logit_bias.size(), 2u);
  EXPECT_EQ(p.logit_bias[0], (std::pair<int32_t, float>{13, 2.5f}));  // object keys sort
  EXPECT_EQ(p.logit_bias[1], (std::pair<int32_t, float>{50256, -100.0f}));
  EXPECT_EQ(r->n, 2);
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->include_usage);
}

TEST_F(OpenAiRequestTest, PromptsComeAsTextListsAndTokenIds) {
  absl::StatusOr<GenerationRequest> r = Completion(R"({"prompt": ["a", "b c"]})");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->prompts.size(), 2u);
  EXPECT_EQ(r->prompt_texts[1], "b c");
  EXPECT_EQ(r->params.max_tokens, 16) << "OpenAI's default for completions";
  r = Completion(R"({"prompt": [1, 2, 3]})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->prompts, (std::vector<std::vector<int32_t>>{{1, 2, 3}})) << "ids taken as given";
  r = Completion(R"({"prompt": [[5], [6, 7]], "max_tokens": 16.0})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->prompts, (std::vector<std::vector<int32_t>>{{5}, {6, 7}}));
}

TEST_F(OpenAiRequestTest, EveryBadFieldIsNamed) {
  ExpectRefused(Completion(R"({"prompt": "x", "max_tokens": "ten"})"), "max_tokens", "integer");
  ExpectRefused(Completion(R"({"prompt": "x", "max_tokens": 0})"), "max_tokens", ">= 1");
  ExpectRefused(Completion(R"({"prompt": "x", "temperature": -1})"), "temperature", ">= 0");
  ExpectRefused(Completion(R"({"prompt": "x", "top_p": 1.5})"), "top_p", "(0, 1]");
  ExpectRefused(Completion(R"({"prompt": "x", "top_k": -2})"), "top_k", "-1");
  ExpectRefused(Completion(R"({"prompt": "x", "n": 0})"), "n", "n must be");
  ExpectRefused(Completion(R"({"prompt": "x", "logprobs": 21})"), "logprobs", "[0, 20]");
  ExpectRefused(Completion(R"({"prompt": "x", "stop": 5})"), "stop", "stop must be");
  ExpectRefused(Completion(R"({"prompt": "x", "stream": "yes"})"), "stream", "true or false");
  ExpectRefused(Completion(R"({"prompt": "x", "logit_bias": {"7": 101}})"), "logit_bias", "[-100, 100]");
  ExpectRefused(Completion(R"({"prompt": "x", "logit_bias": {"cat": 1}})"), "logit_bias", "token ids");
  ExpectRefused(Completion(R"({"prompt": ""})"), "prompt", "empty");
  ExpectRefused(Completion(R"({"prompt": []})"), "prompt", "empty");
  ExpectRefused(Completion(R"({"prompt": [50257]})"), "prompt", "token id");
  ExpectRefused(Completion(R"({"prompt": [-1]})"), "prompt", "token id");
  ExpectRefused(Completion(R"({"prompt": [{"a": 1}]})"), "prompt", "prompt[0]");
  ExpectRefused(Completion(R"({"max_tokens": 3})"), "prompt", "required");
  ExpectRefused(Completion(R"({"prompt": "x", "stream_options": {"include_usage": true}})"),
                "stream_options", "stream");
  ExpectRefused(Chat(R"({"messages": "hi"})"), "messages", "list");
  ExpectRefused(Chat(R"({"messages": [{"role": "robot", "content": "x"}]})"), "messages", "robot");
  ExpectRefused(Chat(R"({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2})"),
                "top_logprobs", "logprobs");
}

TEST_F(OpenAiRequestTest, MalformedBodiesAndUnknownModels) {
  absl::StatusOr<GenerationRequest> r = Completion(R"({"prompt": "x",)");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not valid JSON"), absl::string_view::npos) << r.status();
  r = Completion("{\"prompt\": \"\xff\xfe\"}");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("UTF-8"), absl::string_view::npos) << r.status();
  r = Completion("[1, 2]");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("JSON object"), absl::string_view::npos) << r.status();
  r = Completion(R"({"model": "gpt-4", "prompt": "x"})");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(HttpStatusFor(r.status()), 404);
  EXPECT_EQ(ParamOf(r.status()), "model");
}

// Regressions: each of these once crashed the server, wrapped silently, or
// answered 500.
TEST_F(OpenAiRequestTest, HostileBodiesAreRefusedWhileParsing) {
  // 100,000 nested arrays: refused at the 65th level, without recursing.
  const std::string deep =
      "{\"model\": " + std::string(100000, '[') + std::string(100000, ']') + "}";
  absl::StatusOr<GenerationRequest> r = Completion(deep);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("deeper than 64 levels"), absl::string_view::npos)
      << r.status();
  r = Chat(std::string(100000, '{'));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  // A number beyond a double is a 400, not a 500.
  r = Completion(R"({"prompt": "x", "temperature": 1e400})");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(HttpStatusFor(r.status()), 400) << r.status();
  // A wrong-typed value is described by its type, never dumped.
  ExpectRefused(Completion(R"({"prompt": "x", "max_tokens": [["secret-value"]]})"), "max_tokens",
                "a list");
  r = Completion(R"({"prompt": "x", "max_tokens": {"k": "secret-value"}})");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().find("secret-value"), absl::string_view::npos) << r.status();
  ExpectRefused(Completion(R"({"model": [1, 2], "prompt": "x"})"), "model", "a list");
}

TEST_F(OpenAiRequestTest, OutOfRangeNumbersAreRefusedNotWrapped) {
  ExpectRefused(Completion(R"({"prompt": "x", "top_k": 18446744073709551615})"), "top_k",
                "18446744073709551615");
  ExpectRefused(Completion(R"({"prompt": "x", "top_k": 4294967296})"), "top_k", "top_k");
  ExpectRefused(Completion(R"({"prompt": "x", "max_tokens": 1e300})"), "max_tokens", "max_tokens");
  ExpectRefused(Completion(R"({"prompt": "x", "max_tokens": 2.5})"), "max_tokens", "integer");
  ExpectRefused(Completion(R"({"prompt": "x", "n": 129})"), "n", "128");
  ExpectRefused(Completion(R"({"prompt": "x", "logprobs": 18446744073709551615})"), "logprobs",
                "20");
  ExpectRefused(Completion(R"({"prompt": "x", "seed": 1e30})"), "seed", "seed");
  ExpectRefused(Completion(R"({"prompt": [9223372036854775807]})"), "prompt", "token id");
  // The extremes that are valid stay valid.
  absl::StatusOr<GenerationRequest> r =
      Completion(R"({"prompt": "x", "seed": 18446744073709551615, "top_k": -1})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->params.seed, 18446744073709551615u);
  r = Completion(R"({"prompt": "x", "seed": -1})");
  ASSERT_TRUE(r.ok()) << r.status();
  // max_tokens near 2^63 parses; the engine refuses it against
  // max_model_len without overflowing (engine_core_test).
  r = Completion(R"({"prompt": "x", "max_tokens": 9223372036854775807})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->params.max_tokens, 9223372036854775807);
}

TEST_F(OpenAiRequestTest, CountsAndSizesAreBounded) {
  auto list = [](int count, const std::string& item) {
    std::string s = "[";
    for (int i = 0; i < count; ++i) s += (i ? "," : "") + item;
    return s + "]";
  };
  ExpectRefused(Completion(R"({"prompt": "x", "stop": )" + list(65, "\"a\"") + "}"), "stop",
                "at most 64");
  ExpectRefused(
      Completion(R"({"prompt": "x", "stop": [")" + std::string(1025, 'a') + "\"]}"), "stop",
      "1024 bytes");
  ExpectRefused(Completion(R"({"prompt": "x", "stop_token_ids": )" + list(1025, "1") + "}"),
                "stop_token_ids", "at most 1024");
  std::string bias = "{";
  for (int i = 0; i < 1025; ++i) bias += (i ? ",\"" : "\"") + std::to_string(i) + "\": 1";
  ExpectRefused(Completion(R"({"prompt": "x", "logit_bias": )" + bias + "}}"), "logit_bias",
                "at most 1024");
  ExpectRefused(Completion(R"({"prompt": )" + list(257, "\"a\"") + "}"), "prompt",
                "at most 256");
  ExpectRefused(Completion(R"({"prompt": )" + list(200, "\"a\"") + R"(, "n": 2})"), "n",
                "at most 256");
  ExpectRefused(
      Chat(R"({"messages": )" + list(2049, R"({"role": "user", "content": "x"})") + "}"),
      "messages", "at most 2048");
  EXPECT_TRUE(Completion(R"({"prompt": "x", "stop": )" + list(64, "\"a\"") + "}").ok());
}

TEST_F(OpenAiRequestTest, UnimplementedFieldsAreRefusedAndTheirNoOpFormsAccepted) {
  const std::string chat_head = R"({"messages": [{"role": "user", "content": "x"}], )";
  struct Case {
    const char* field;
    const char* value;
  };
  const Case refused[] = {
      {"response_format", R"({"type": "json_object"})"},
      {"response_format", R"({"type": "json_schema", "json_schema": {"name": "a"}})"},
      {"tools", R"([{"type": "function", "function": {"name": "f"}}])"},
      {"tool_choice", R"("required")"},
      {"prompt_logprobs", "1"},
      {"guided_json", R"({"type": "object"})"},
      {"guided_regex", R"("[a-z]+")"},
      {"guided_choice", R"(["a", "b"])"},
      {"guided_grammar", R"("root ::= \"a\"")"},
      {"structured_outputs", R"({"choice": ["a"]})"},
      {"chat_template_kwargs", R"({"enable_thinking": true})"},
      {"chat_template", R"("{{ messages }}")"},
      {"use_beam_search", "true"},
      {"allowed_token_ids", "[1, 2]"},
      {"reasoning_effort", R"("low")"},
  };
  for (const Case& c : refused) {
    SCOPED_TRACE(c.field);
    ExpectRefused(Chat(chat_head + "\"" + c.field + "\": " + c.value + "}"), c.field,
                  "not supported");
  }
  ExpectRefused(Completion(R"({"prompt": "x", "suffix": "y"})"), "suffix", "not supported");
  ExpectRefused(Completion(R"({"prompt": "x", "guided_choice": ["a"]})"), "guided_choice",
                "not supported");
  // What clients send by default.
  absl::StatusOr<GenerationRequest> r = Chat(
      chat_head + R"("response_format": {"type": "text"}, "tools": [], "tool_choice": "none",
      "chat_template_kwargs": {}, "parallel_tool_calls": true, "guided_json": null,
      "prompt_logprobs": null, "skip_special_tokens": true, "user": "u1"})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->unknown_fields.empty());
  r = Chat(chat_head + R"("tool_choice": "auto"})");
  EXPECT_TRUE(r.ok()) << r.status();
}

TEST_F(OpenAiRequestTest, FieldsOutsideBothSetsAreIgnoredAndReported) {
  absl::StatusOr<GenerationRequest> r =
      Completion(R"({"prompt": "x", "frobnicate": 1, "my_extension": {"a": [1]}})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->unknown_fields, (std::vector<std::string>{"frobnicate", "my_extension"}));
  // A hostile body cannot make the report large.
  std::string body = R"({"prompt": "x")";
  for (int i = 0; i < 100; ++i) {
    body += ", \"" + std::string(200, 'a' + i % 26) + std::to_string(i) + "\": 0";
  }
  r = Completion(body + "}");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->unknown_fields.size(), 16u);
  for (const std::string& name : r->unknown_fields) EXPECT_LE(name.size(), 67u) << name;
  // request_id is read.
  r = Completion(R"({"prompt": "x", "request_id": "abc-1"})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->client_request_id, "abc-1");
}

TEST_F(OpenAiRequestTest, ChatRendersTheDefaultTemplateAndFillsTheContext) {
  absl::StatusOr<GenerationRequest> r = Chat(R"({"messages": [
      {"role": "system", "content": "Be brief."},
      {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
      {"role": "assistant", "content": "Hello."},
      {"role": "user", "content": "Bye"}], "logprobs": true, "top_logprobs": 2})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->prompt_texts[0],
            "Be brief.\n\nUser: Hi\n\nAssistant: Hello.\n\nUser: Bye\n\nAssistant:");
  EXPECT_EQ(r->prompts[0], *tokenizer_->Encode(r->prompt_texts[0], true));
  EXPECT_EQ(r->params.max_tokens, 64 - static_cast<int64_t>(r->prompts[0].size()))
      << "without max_tokens a chat may fill what is left of max_model_len";
  EXPECT_EQ(r->params.logprobs, 2);
  r = Chat(R"({"messages": [{"role": "user", "content": "x"}], "max_completion_tokens": 3})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->params.max_tokens, 3);
}

TEST_F(OpenAiRequestTest, ErrorBodiesFollowOpenAi) {
  const HttpResponse response =
      OpenAiErrorResponse(InvalidParam("top_p", "top_p must be in (0, 1], got 1.5"), "top_p");
  EXPECT_EQ(response.status, 400);
  EXPECT_EQ(response.body,
            R"({"error":{"code":400,"message":"top_p must be in (0, 1], got 1.5",)"
            R"("param":"top_p","type":"BadRequestError"}})");
  const HttpResponse busy = OpenAiErrorResponse(absl::ResourceExhaustedError("queue full"));
  EXPECT_EQ(busy.status, 429);
  ASSERT_EQ(busy.headers.size(), 1u);
  EXPECT_EQ(busy.headers[0].first, "Retry-After");
}

}  // namespace
}  // namespace fox
