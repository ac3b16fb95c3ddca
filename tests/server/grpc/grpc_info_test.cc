// The unary methods (Tokenize, ModelInfo) and the standard health service.
#include <future>

#include "grpcpp/generic/generic_stub.h"
#include "tests/server/grpc/grpc_test_util.h"

namespace fox::testing {
namespace {

class GrpcInfoTest : public GrpcTest {
 protected:
  void SetUp() override {
    GrpcTest::SetUp();
    if (!HasFatalFailure()) StartServer();
  }

  // grpc.health.v1.Health/Check for `service`: the status enum (1 SERVING,
  // 2 NOT_SERVING), or -1 when the call fails. The two messages are encoded
  // by hand (one field each) rather than generated from health.proto.
  int HealthStatus(const std::string& service) {
    std::string request_bytes;
    if (!service.empty()) {
      request_bytes = std::string(1, '\x0a') + static_cast<char>(service.size()) + service;
    }
    grpc::Slice slice(request_bytes);
    grpc::ByteBuffer request(&slice, 1), response;
    grpc::GenericStub stub(channel_);
    grpc::ClientContext call;
    std::promise<grpc::Status> done;
    stub.UnaryCall(&call, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                   [&](grpc::Status status) { done.set_value(std::move(status)); });
    const grpc::Status status = done.get_future().get();
    if (!status.ok()) return -1;
    std::vector<grpc::Slice> slices;
    if (!response.Dump(&slices).ok()) return -1;
    std::string bytes;
    for (const grpc::Slice& s : slices)
      bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    if (bytes.empty()) return 0;  // UNKNOWN, the default value
    return bytes.size() == 2 && bytes[0] == '\x08' ? bytes[1] : -1;
  }
};

TEST_F(GrpcInfoTest, TokenizeHonoursAddBos) {
  for (const bool add_bos : {false, true}) {
    SCOPED_TRACE(add_bos ? "add_bos" : "no bos");
    v1::TokenizeRequest request;
    request.set_text("Hello, forgetting world");
    request.set_add_bos(add_bos);
    v1::TokenizeResponse response;
    grpc::ClientContext call;
    const grpc::Status status = stub_->Tokenize(&call, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    absl::StatusOr<std::vector<int32_t>> expected = tokenizer().Encode(request.text(), add_bos);
    ASSERT_TRUE(expected.ok()) << expected.status();
    EXPECT_EQ(std::vector<int32_t>(response.token_ids().begin(), response.token_ids().end()),
              *expected);
    EXPECT_EQ(response.token_ids(0) == tokenizer().bos_id(), add_bos);
  }
}

TEST_F(GrpcInfoTest, ModelInfoDescribesTheModel) {
  v1::ModelInfoResponse response;
  grpc::ClientContext call;
  const grpc::Status status = stub_->ModelInfo(&call, v1::ModelInfoRequest(), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.model_name(), "fox-tiny");
  EXPECT_EQ(response.max_model_len(), static_cast<uint32_t>(tokenizer().model_max_length()));
  EXPECT_EQ(response.vocab_size(), static_cast<uint32_t>(model().config.vocab_size));
  EXPECT_EQ(response.num_layers(), 4u);
  EXPECT_EQ(response.num_heads(), 4u);
  EXPECT_EQ(response.hidden_size(), 256u);
}

TEST_F(GrpcInfoTest, HealthFollowsSetServing) {
  EXPECT_EQ(HealthStatus(""), 1);
  EXPECT_EQ(HealthStatus("foxserve.v1.Foxserve"), 1);
  server_->SetServing(false);
  EXPECT_EQ(HealthStatus(""), 2);
  EXPECT_EQ(HealthStatus("foxserve.v1.Foxserve"), 2);
  server_->SetServing(true);
  EXPECT_EQ(HealthStatus(""), 1);
  EXPECT_EQ(HealthStatus("foxserve.v1.Foxserve"), 1);
}

}  // namespace
}  // namespace fox::testing
