// A call that ends early ends its engine request too: a client cancel, an
// expired deadline and a server stop each abort the request within a step,
// after which the engine is idle and every KV block is free.
#include <future>

#include "tests/server/grpc/grpc_test_util.h"

namespace fox::testing {
namespace {

// Long enough (thousands of steps) that only an abort can end it in time.
v1::GenerateRequest LongRequest() {
  v1::GenerateRequest request = GreedyRequest("The forget gate", 2000);
  request.mutable_sampling()->set_ignore_eos(true);
  return request;
}

class GrpcCancelTest : public GrpcTest {
 protected:
  void SetUp() override {
    GrpcTest::SetUp();
    if (!HasFatalFailure()) StartServer();
  }
};

TEST_F(GrpcCancelTest, ClientCancelMidStreamAbortsTheEngineRequest) {
  grpc::ClientContext call;
  const GenerateResult result = ReadGenerate(*stub_, &call, LongRequest(), [&](int num_chunks) {
    if (num_chunks == 2) call.TryCancel();
  });
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_GE(result.num_chunks, 2);
  EXPECT_EQ(result.num_finals, 0);
  EXPECT_TRUE(IdleAfterAborts(1));
}

TEST_F(GrpcCancelTest, ExpiredDeadlineAbortsTheEngineRequest) {
  grpc::ClientContext call;
  call.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(50));
  const GenerateResult result = ReadGenerate(*stub_, &call, LongRequest());
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(result.num_finals, 0);
  EXPECT_TRUE(IdleAfterAborts(1));
}

// Stop cancels the calls still running after the grace period and returns.
TEST_F(GrpcCancelTest, StopCancelsRunningCalls) {
  std::promise<void> streaming;
  std::future<GenerateResult> pending = std::async(std::launch::async, [&] {
    grpc::ClientContext call;
    return ReadGenerate(*stub_, &call, LongRequest(), [&](int num_chunks) {
      if (num_chunks == 1) streaming.set_value();
    });
  });
  ASSERT_EQ(streaming.get_future().wait_for(std::chrono::seconds(30)), std::future_status::ready);
  server_->Stop(std::chrono::milliseconds(100));
  const GenerateResult result = pending.get();
  EXPECT_FALSE(result.status.ok());
  EXPECT_EQ(result.num_finals, 0);
  EXPECT_TRUE(IdleAfterAborts(1));
  server_->Stop(std::chrono::milliseconds(0));  // idempotent
}

}  // namespace
}  // namespace fox::testing
