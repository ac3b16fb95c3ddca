// Requests the server refuses, with the status code and a message naming the
// problem: invalid requests, a missing or wrong API key, a full queue, and an
// address that cannot be bound.
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/server/grpc/grpc_test_util.h"

namespace fox::testing {
namespace {

class GrpcErrorsTest : public GrpcTest {
 protected:
  // The status of a Generate call, which must have streamed nothing.
  grpc::Status GenerateStatus(const v1::GenerateRequest& request,
                              const std::string& authorization = "") {
    grpc::ClientContext call;
    if (!authorization.empty()) call.AddMetadata("authorization", authorization);
    const GenerateResult result = ReadGenerate(*stub_, &call, request);
    EXPECT_EQ(result.num_chunks + result.num_finals, 0) << "a refused call streamed messages";
    return result.status;
  }
};

TEST_F(GrpcErrorsTest, InvalidRequestsNameTheProblem) {
  StartServer();
  struct Case {
    const char* what;
    v1::GenerateRequest request;
    const char* message;
  };
  std::vector<Case> cases;
  cases.push_back({"no prompt", v1::GenerateRequest(), "prompt is empty"});
  cases.push_back({"empty text", GreedyRequest("", 4), "prompt is empty"});
  {
    v1::GenerateRequest request = GreedyRequest("x", 4);
    request.mutable_token_ids();  // switches the oneof to an empty id list
    cases.push_back({"empty token ids", request, "prompt is empty"});
  }
  {
    v1::GenerateRequest request = GreedyRequest("hello", 4);
    request.mutable_sampling()->set_top_p(1.5f);
    cases.push_back({"top_p", request, "top_p"});
  }
  {
    v1::GenerateRequest request = GreedyRequest("hello", 4);
    request.mutable_sampling()->set_temperature(-1.0f);
    cases.push_back({"temperature", request, "temperature"});
  }
  {
    v1::GenerateRequest request = GreedyRequest("hello", 4);
    request.mutable_sampling()->set_max_tokens(0);
    cases.push_back({"max_tokens 0", request, "max_tokens"});
  }
  {
    v1::GenerateRequest request = GreedyRequest("hello", 4);
    request.mutable_sampling()->set_logprobs(50);
    cases.push_back({"logprobs", request, "logprobs"});
  }
  {
    v1::GenerateRequest request = GreedyRequest("hello", 4);
    request.mutable_token_ids()->add_ids(1 << 30);
    cases.push_back({"token id", request, "outside the vocabulary"});
  }
  {
    // One token longer than the context, given as ids.
    v1::GenerateRequest request = GreedyRequest("hello", 1);
    for (int64_t i = 0; i < context_->max_model_len(); ++i)
      request.mutable_token_ids()->add_ids(11);
    cases.push_back({"prompt too long", request, "maximum context length"});
  }
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    const grpc::Status status = GenerateStatus(c.request);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_TRUE(Contains(status.error_message(), c.message));
  }
  // Nothing was admitted, so nothing runs.
  EXPECT_TRUE(engine_->WaitUntilIdle(absl::Seconds(5)));
  EXPECT_EQ(engine_->Stats().counters.prompt_tokens, 0);
}

// Unset sampling fields take vLLM's defaults: 16 tokens at temperature 1.
TEST_F(GrpcErrorsTest, UnsetSamplingFieldsTakeDefaults) {
  StartServer();
  v1::GenerateRequest request;
  request.set_text("hello there");
  request.mutable_sampling()->set_ignore_eos(true);
  grpc::ClientContext call;
  const GenerateResult result = ReadGenerate(*stub_, &call, request);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(result.token_ids.size(), 16u);
}

TEST_F(GrpcErrorsTest, ApiKeyIsRequiredOnEveryMethod) {
  StartServer(TestEngineConfig(), "sekrit");
  const v1::GenerateRequest request = GreedyRequest("hello", 3);
  for (const std::string authorization : {"", "Bearer wrong", "sekrit", "Bearer sekrit2"}) {
    SCOPED_TRACE("authorization: '" + authorization + "'");
    const grpc::Status status = GenerateStatus(request, authorization);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(status.error_message(), "missing or invalid API key");

    grpc::ClientContext tokenize_call;
    if (!authorization.empty()) tokenize_call.AddMetadata("authorization", authorization);
    v1::TokenizeRequest tokenize;
    tokenize.set_text("hi");
    v1::TokenizeResponse tokens;
    EXPECT_EQ(stub_->Tokenize(&tokenize_call, tokenize, &tokens).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);

    grpc::ClientContext info_call;
    if (!authorization.empty()) info_call.AddMetadata("authorization", authorization);
    v1::ModelInfoResponse info;
    EXPECT_EQ(stub_->ModelInfo(&info_call, v1::ModelInfoRequest(), &info).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }

  grpc::ClientContext call;
  call.AddMetadata("authorization", "Bearer sekrit");
  const GenerateResult result = ReadGenerate(*stub_, &call, request);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(result.num_finals, 1);
  grpc::ClientContext info_call;
  info_call.AddMetadata("authorization", "Bearer sekrit");
  v1::ModelInfoResponse info;
  EXPECT_TRUE(stub_->ModelInfo(&info_call, v1::ModelInfoRequest(), &info).ok());
}

// With one running and one queued request allowed, a burst of requests gets
// RESOURCE_EXHAUSTED for some; the rest complete.
TEST_F(GrpcErrorsTest, FullQueueIsResourceExhausted) {
  EngineConfig config = TestEngineConfig();
  config.max_num_seqs = 1;
  config.max_queued_requests = 1;
  StartServer(config);
  constexpr int kNumCalls = 8;
  std::vector<GenerateResult> results(kNumCalls);
  std::vector<std::thread> clients;
  for (int i = 0; i < kNumCalls; ++i) {
    clients.emplace_back([&, i] {
      v1::GenerateRequest request = GreedyRequest("hello", 64);
      request.mutable_sampling()->set_ignore_eos(true);
      grpc::ClientContext call;
      results[i] = ReadGenerate(*stub_, &call, request);
    });
  }
  for (std::thread& client : clients) client.join();
  int num_ok = 0, num_exhausted = 0;
  for (const GenerateResult& result : results) {
    if (result.status.ok()) {
      ++num_ok;
      EXPECT_EQ(result.token_ids.size(), 64u);
      EXPECT_EQ(result.num_finals, 1);
    } else {
      EXPECT_EQ(result.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
          << result.status.error_message();
      EXPECT_FALSE(result.status.error_message().empty());
      ++num_exhausted;
    }
  }
  EXPECT_GE(num_ok, 1);
  EXPECT_GE(num_exhausted, 1);
  EXPECT_EQ(num_ok + num_exhausted, kNumCalls);
}

TEST_F(GrpcErrorsTest, PortInUseIsUnavailableNamingTheAddress) {
  StartServer();
  const int port = server_->port();
  absl::StatusOr<std::unique_ptr<GrpcServer>> second =
      GrpcServer::Start(context_.get(), "127.0.0.1", port);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(Contains(std::string(second.status().message()), absl::StrCat("127.0.0.1:", port)));
}

}  // namespace
}  // namespace fox::testing
