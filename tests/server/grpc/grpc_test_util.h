// A real engine on the embedded tiny model behind a GrpcServer on loopback,
// and a real client stub, for the gRPC front end's tests. The model and
// tokenizer are loaded once per test suite; each test starts its own engine
// and server (so each may pick its engine limits and API key).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "foxserve/v1/foxserve.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "models/checkpoint.h"
#include "models/tokenizer.h"
#include "server/grpc/grpc_server.h"
#include "server/serving_context.h"

namespace fox::testing {

namespace v1 = ::foxserve::v1;

inline constexpr char kModelDir[] = FOX_BINARY_DIR "/share/foxserve/models/fox-tiny";

// Float32 KV, one CPU thread, 4096 blocks (32 MiB for fox-tiny: a few long
// requests or 50 short ones); max_model_len: the tokenizer's.
inline EngineConfig TestEngineConfig() {
  EngineConfig config;
  config.num_kv_blocks = 4096;
  config.kv_dtype = DType::kF32;
  config.cpu_threads = 1;
  return config;
}

// A text prompt with greedy sampling.
inline v1::GenerateRequest GreedyRequest(const std::string& text, uint32_t max_tokens) {
  v1::GenerateRequest request;
  request.set_text(text);
  request.mutable_sampling()->set_temperature(0.0f);
  request.mutable_sampling()->set_max_tokens(max_tokens);
  return request;
}

inline ::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << text << "' does not contain '" << part << "'";
}

// Everything one Generate call delivered.
struct GenerateResult {
  grpc::Status status;
  std::vector<int32_t> token_ids;  // the chunks' ids, in order
  std::string text;                // the chunks' text, concatenated
  std::vector<v1::TokenLogprob> logprobs;
  int num_chunks = 0;
  int num_finals = 0;
  int num_after_final = 0;  // messages of any kind after the first final
  v1::GenerateFinal final_message;
};

// Reads a Generate call to its end. `after_chunk`, when set, is called with
// the number of chunks read so far after each chunk (e.g. to cancel).
inline GenerateResult ReadGenerate(v1::Foxserve::Stub& stub, grpc::ClientContext* call,
                                   const v1::GenerateRequest& request,
                                   const std::function<void(int)>& after_chunk = nullptr) {
  GenerateResult result;
  std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>> reader = stub.Generate(call, request);
  for (v1::GenerateResponse response; reader->Read(&response);) {
    if (result.num_finals > 0) ++result.num_after_final;
    if (response.has_final()) {
      ++result.num_finals;
      result.final_message = response.final();
      continue;
    }
    const v1::GenerateChunk& chunk = response.chunk();
    ++result.num_chunks;
    result.token_ids.insert(result.token_ids.end(), chunk.token_ids().begin(),
                            chunk.token_ids().end());
    result.text += chunk.text();
    result.logprobs.insert(result.logprobs.end(), chunk.logprobs().begin(), chunk.logprobs().end());
    if (after_chunk) after_chunk(result.num_chunks);
  }
  result.status = reader->Finish();
  return result;
}

class GrpcTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<Checkpoint> model = LoadCheckpoint(kModelDir);
    absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::Load(kModelDir);
    if (!model.ok() || !tokenizer.ok()) {
      load_error_ = "the embedded model is missing (build the fox_embedded_model target): " +
                    (model.ok() ? tokenizer.status() : model.status()).ToString();
      return;
    }
    model_ = std::make_unique<Checkpoint>(std::move(*model));
    tokenizer_ = std::move(*tokenizer);
  }
  static void TearDownTestSuite() {
    model_.reset();
    tokenizer_.reset();
  }
  void SetUp() override { ASSERT_TRUE(load_error_.empty()) << load_error_; }
  void TearDown() override {
    stub_.reset();
    channel_.reset();
    if (server_) server_->Stop(std::chrono::milliseconds(0));
    server_.reset();
    if (engine_) engine_->Shutdown();
  }

  // Starts an engine with `config`, its context (with `api_key`), the server
  // on 127.0.0.1:0, and a channel and stub to it.
  void StartServer(const EngineConfig& config = TestEngineConfig(),
                   const std::string& api_key = "") {
    absl::StatusOr<std::unique_ptr<EngineCore>> core =
        EngineCore::ForCheckpoint(*model_, tokenizer_.get(), config);
    ASSERT_TRUE(core.ok()) << core.status();
    engine_ = std::make_unique<Engine>(std::move(*core));
    context_ =
        std::make_unique<ServingContext>(engine_.get(), tokenizer_.get(), "fox-tiny", api_key);
    absl::StatusOr<std::unique_ptr<GrpcServer>> server =
        GrpcServer::Start(context_.get(), "127.0.0.1", 0);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    ASSERT_GT(server_->port(), 0);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                   grpc::InsecureChannelCredentials());
    stub_ = v1::Foxserve::NewStub(channel_);
  }

  // `request` run through the engine directly, read to its finish event.
  void RunDirect(EngineRequest request, std::vector<int32_t>* token_ids, TokenEvent* finish) {
    absl::StatusOr<std::shared_ptr<RequestStream>> stream = engine_->Submit(std::move(request));
    ASSERT_TRUE(stream.ok()) << stream.status();
    const Clock::time_point deadline = Clock::now() + std::chrono::seconds(60);
    while (std::optional<TokenEvent> event = (*stream)->NextUntil(deadline)) {
      if (event->is_finish()) {
        *finish = std::move(*event);
        return;
      }
      token_ids->push_back(event->token_id);
    }
    FAIL() << "no finish event within 60 s";
  }

  // The engine is idle with every KV block back in the pool, and has ended
  // `num_aborted` requests with "abort" and none by length since it started.
  ::testing::AssertionResult IdleAfterAborts(int num_aborted) {
    if (!engine_->WaitUntilIdle(absl::Seconds(10))) {
      return ::testing::AssertionFailure() << "the engine is not idle after 10 s";
    }
    const EngineStats stats = engine_->Stats();
    if (stats.kv_blocks_free != stats.kv_blocks_total) {
      return ::testing::AssertionFailure()
             << stats.kv_blocks_free << " of " << stats.kv_blocks_total << " KV blocks free";
    }
    const int64_t aborted = stats.counters.finished_by(FinishReason::kAbort);
    const int64_t by_length = stats.counters.finished_by(FinishReason::kLength);
    if (aborted != num_aborted || by_length != 0) {
      return ::testing::AssertionFailure()
             << aborted << " requests aborted and " << by_length << " ended by length; expected "
             << num_aborted << " and 0";
    }
    return ::testing::AssertionSuccess();
  }

  static const Checkpoint& model() { return *model_; }
  static const Tokenizer& tokenizer() { return *tokenizer_; }

  std::unique_ptr<Engine> engine_;
  std::unique_ptr<ServingContext> context_;
  std::unique_ptr<GrpcServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Foxserve::Stub> stub_;

 private:
  static inline std::unique_ptr<Checkpoint> model_;
  static inline std::unique_ptr<Tokenizer> tokenizer_;
  static inline std::string load_error_;
};

}  // namespace fox::testing
