// Generate through a real server and client: the streamed tokens are the
// engine's own, the final message comes once and last with the usage, and
// many concurrent streams each end properly.
#include <algorithm>
#include <thread>

#include "absl/strings/str_cat.h"
#include "server/grpc/proto_convert.h"
#include "tests/server/grpc/grpc_test_util.h"

namespace fox::testing {
namespace {

constexpr char kPrompt[] = "The forget gate decides what the model keeps";

class GrpcGenerateTest : public GrpcTest {
 protected:
  void SetUp() override {
    GrpcTest::SetUp();
    if (!HasFatalFailure()) StartServer();
  }
};

// Greedy tokens streamed over gRPC equal those of the same request run
// through the engine directly; the text is their decoding; the final message
// comes once, last, with the usage and finish reason.
TEST_F(GrpcGenerateTest, GreedyStreamMatchesEngineAndEndsWithOneFinal) {
  const v1::GenerateRequest request = GreedyRequest(kPrompt, 24);
  grpc::ClientContext call;
  const GenerateResult result = ReadGenerate(*stub_, &call, request);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();

  absl::StatusOr<EngineRequest> direct = ToEngineRequest(request, tokenizer(), "direct");
  ASSERT_TRUE(direct.ok()) << direct.status();
  const size_t num_prompt_tokens = direct->prompt_ids.size();
  std::vector<int32_t> expected;
  TokenEvent finish;
  RunDirect(std::move(*direct), &expected, &finish);

  EXPECT_EQ(result.token_ids, expected);
  EXPECT_EQ(result.token_ids.size(), 24u);
  EXPECT_GE(result.num_chunks, 1);
  EXPECT_EQ(result.num_finals, 1);
  EXPECT_EQ(result.num_after_final, 0);
  EXPECT_EQ(result.final_message.finish_reason(), "length");
  EXPECT_EQ(result.final_message.usage().prompt_tokens(), num_prompt_tokens);
  EXPECT_EQ(result.final_message.usage().completion_tokens(), 24u);
  EXPECT_EQ(finish.prompt_tokens, static_cast<int64_t>(num_prompt_tokens));
  absl::StatusOr<std::string> decoded = tokenizer().Decode(result.token_ids);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(result.text, *decoded);
  EXPECT_TRUE(result.logprobs.empty()) << "logprobs sent without being asked for";
}

// Token ids are taken as given (no BOS added), and with logprobs every token
// has its logprob and the requested number of alternatives, most likely first.
TEST_F(GrpcGenerateTest, TokenIdPromptWithLogprobs) {
  absl::StatusOr<std::vector<int32_t>> ids = tokenizer().Encode(kPrompt, /*add_bos=*/false);
  ASSERT_TRUE(ids.ok()) << ids.status();
  v1::GenerateRequest request;
  request.mutable_token_ids()->mutable_ids()->Assign(ids->begin(), ids->end());
  request.mutable_sampling()->set_temperature(0.0f);
  request.mutable_sampling()->set_max_tokens(8);
  request.mutable_sampling()->set_ignore_eos(true);
  request.mutable_sampling()->set_logprobs(3);
  grpc::ClientContext call;
  const GenerateResult result = ReadGenerate(*stub_, &call, request);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();

  EXPECT_EQ(result.final_message.usage().prompt_tokens(), ids->size());
  ASSERT_EQ(result.token_ids.size(), 8u);
  ASSERT_EQ(result.logprobs.size(), 8u);
  for (size_t i = 0; i < result.logprobs.size(); ++i) {
    const v1::TokenLogprob& entry = result.logprobs[i];
    EXPECT_EQ(entry.token_id(), result.token_ids[i]);
    EXPECT_LE(entry.logprob(), 0.0f);
    ASSERT_EQ(entry.top_size(), 3);
    // Greedy: the sampled token is the most likely one.
    EXPECT_EQ(entry.top(0).logprob(), entry.logprob());
    EXPECT_GE(entry.top(0).logprob(), entry.top(1).logprob());
    EXPECT_GE(entry.top(1).logprob(), entry.top(2).logprob());
  }
}

// A stop token id taken from a greedy run ends a second run there, with
// finish reason "stop" and the id as the stop reason.
TEST_F(GrpcGenerateTest, StopTokenIdIsTheStopReason) {
  v1::GenerateRequest request = GreedyRequest(kPrompt, 12);
  request.mutable_sampling()->set_ignore_eos(true);
  grpc::ClientContext first_call;
  const GenerateResult first = ReadGenerate(*stub_, &first_call, request);
  ASSERT_TRUE(first.status.ok()) << first.status.error_message();
  ASSERT_EQ(first.token_ids.size(), 12u);
  const int32_t stop_id = first.token_ids[5];
  const size_t at =
      std::find(first.token_ids.begin(), first.token_ids.end(), stop_id) - first.token_ids.begin();

  request.mutable_sampling()->add_stop_token_ids(stop_id);
  grpc::ClientContext second_call;
  const GenerateResult second = ReadGenerate(*stub_, &second_call, request);
  ASSERT_TRUE(second.status.ok()) << second.status.error_message();
  EXPECT_EQ(second.final_message.finish_reason(), "stop");
  EXPECT_EQ(second.final_message.stop_reason_case(), v1::GenerateFinal::kStopTokenId);
  EXPECT_EQ(second.final_message.stop_token_id(), stop_id);
  EXPECT_EQ(second.token_ids,
            std::vector<int32_t>(first.token_ids.begin(), first.token_ids.begin() + at + 1));
  EXPECT_EQ(second.final_message.usage().completion_tokens(), at + 1);
}

// 50 streams at once: each ends OK with exactly one final message, last,
// whose completion count is the number of tokens streamed.
TEST_F(GrpcGenerateTest, FiftyConcurrentStreamsEachEndOnce) {
  constexpr int kNumStreams = 50;
  std::vector<GenerateResult> results(kNumStreams);
  std::vector<std::thread> clients;
  for (int i = 0; i < kNumStreams; ++i) {
    clients.emplace_back([&, i] {
      v1::GenerateRequest request = GreedyRequest(absl::StrCat(kPrompt, " ", i), 6 + i % 5);
      request.mutable_sampling()->set_ignore_eos(true);
      grpc::ClientContext call;
      results[i] = ReadGenerate(*stub_, &call, request);
    });
  }
  for (std::thread& client : clients) client.join();
  for (int i = 0; i < kNumStreams; ++i) {
    SCOPED_TRACE(absl::StrCat("stream ", i));
    const GenerateResult& result = results[i];
    ASSERT_TRUE(result.status.ok()) << result.status.error_message();
    EXPECT_EQ(result.num_finals, 1);
    EXPECT_EQ(result.num_after_final, 0);
    EXPECT_EQ(result.final_message.finish_reason(), "length");
    EXPECT_EQ(result.token_ids.size(), static_cast<size_t>(6 + i % 5));
    EXPECT_EQ(result.final_message.usage().completion_tokens(), result.token_ids.size());
  }
  EXPECT_TRUE(engine_->WaitUntilIdle(absl::Seconds(10)));
  const EngineStats stats = engine_->Stats();
  EXPECT_EQ(stats.kv_blocks_free, stats.kv_blocks_total);
}

}  // namespace
}  // namespace fox::testing
