// Helpers for the engine tests: small random models, driving an EngineCore
// to completion, collecting a request's events, and the comparison of two
// outputs of the same request.
//
// Batching, chunking and recompute change the order of floating-point sums,
// so "the same output" means: logprobs within a tolerance (1e-4), and
// identical token ids up to the first step where the two most likely tokens
// are within that tolerance of each other in either run (a near-tie). There
// either token is accepted; if they differ, comparison of that request stops.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/engine_core.h"
#include "engine/request_stream.h"
#include "gtest/gtest.h"
#include "models/checkpoint.h"
#include "models/checkpoint_writer.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_models.h"

namespace fox::testing {

// A random FoX checkpoint (float32) in a temporary directory, loaded.
struct SmallModel {
  TempDir dir;
  Checkpoint checkpoint;
};

// SmallTestConfig(pro) with weights from `init`, or null after reporting a
// test failure.
inline std::unique_ptr<SmallModel> MakeSmallModel(const RandomInitOptions& init, bool pro = true) {
  auto model = std::make_unique<SmallModel>();
  const FoxConfig config = SmallTestConfig(pro);
  absl::StatusOr<TensorMap> written = WriteRandomTestModel(model->dir.path(), config, init);
  EXPECT_TRUE(written.ok()) << written.status();
  if (!written.ok()) return nullptr;
  absl::StatusOr<Checkpoint> loaded = LoadCheckpoint(model->dir.path());
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  if (!loaded.ok()) return nullptr;
  model->checkpoint = std::move(*loaded);
  return model;
}

// Weights with std 0.2, so that logits are peaked enough for greedy decoding
// to rarely meet a near-tie (with 0.02 the logits are almost flat).
inline RandomInitOptions PeakedInit(uint64_t seed) {
  RandomInitOptions init;
  init.seed = seed;
  init.std = 0.2f;
  return init;
}

// Float32 KV, blocks of 16, and an explicit max_model_len (the test models
// have no tokenizer).
inline EngineConfig SmallEngineConfig(int64_t num_kv_blocks, int64_t max_num_batched_tokens = 64,
                                      int64_t max_model_len = 1024) {
  EngineConfig config;
  config.num_kv_blocks = num_kv_blocks;
  config.block_size = 16;
  config.kv_dtype = DType::kF32;
  config.max_model_len = max_model_len;
  config.max_num_batched_tokens = max_num_batched_tokens;
  config.cpu_threads = 1;
  return config;
}

// Prompt of `length` ids drawn from [0, vocab) by a generator seeded with `seed`.
inline std::vector<int32_t> RandomPrompt(int64_t length, uint32_t seed, int32_t vocab) {
  std::vector<int32_t> ids(length);
  uint64_t x = 0x9E3779B97F4A7C15ull * (seed + 1);
  for (int32_t& id : ids) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    id = static_cast<int32_t>(x % static_cast<uint64_t>(vocab));
  }
  return ids;
}

inline EngineRequest MakeRequest(const std::string& id, std::vector<int32_t> prompt,
                                 SamplingParams params) {
  EngineRequest request;
  request.id = id;
  request.prompt_ids = std::move(prompt);
  request.params = std::move(params);
  return request;
}

inline SamplingParams GreedyParams(int64_t max_tokens) {
  SamplingParams params;
  params.temperature = 0.0f;
  params.max_tokens = max_tokens;
  params.logprobs = 2;
  return params;
}

inline SamplingParams SeededParams(int64_t max_tokens, uint64_t seed) {
  SamplingParams params;
  params.temperature = 1.0f;
  params.top_p = 0.9f;
  params.seed = seed;
  params.max_tokens = max_tokens;
  params.logprobs = 2;
  return params;
}

// Everything one request's stream delivered.
struct Output {
  std::vector<int32_t> token_ids;
  std::vector<float> logprobs;
  std::vector<std::vector<TopLogprob>> top_logprobs;
  std::vector<std::string> pieces;  // text of every event, the finish event's last
  std::string text;                 // the pieces concatenated
  std::optional<TokenEvent> finish;
  int num_finish_events = 0;
  int num_events_after_finish = 0;

  bool finished() const { return finish.has_value(); }
  FinishReason finish_reason() const {
    return finish ? finish->finish_reason : FinishReason::kNone;
  }
};

inline void AddEvent(TokenEvent event, Output* out) {
  if (out->num_finish_events > 0) ++out->num_events_after_finish;
  out->pieces.push_back(event.text);
  out->text += event.text;
  if (event.is_finish()) {
    ++out->num_finish_events;
    out->finish = std::move(event);
    return;
  }
  out->token_ids.push_back(event.token_id);
  out->logprobs.push_back(event.logprob);
  out->top_logprobs.push_back(std::move(event.top_logprobs));
}

// Takes whatever `stream` holds now.
inline void Drain(RequestStream& stream, Output* out) {
  while (std::optional<TokenEvent> event = stream.TryNext()) AddEvent(std::move(*event), out);
}

// Reads `stream` until its finish event (or `timeout` passes) and then
// whatever follows it.
inline Output ReadToEnd(RequestStream& stream, Clock::duration timeout = std::chrono::seconds(60)) {
  Output out;
  const Clock::time_point deadline = Clock::now() + timeout;
  while (!out.finished()) {
    std::optional<TokenEvent> event = stream.NextUntil(deadline);
    if (!event) break;
    AddEvent(std::move(*event), &out);
  }
  Drain(stream, &out);  // must find nothing
  return out;
}

// One request with its stream and what it has delivered so far.
struct Tracked {
  EngineRequest request;
  std::shared_ptr<RequestStream> stream;
  Output output;
};

// Adds every request of `tracked` to `core` (the stream is created here).
inline ::testing::AssertionResult AddAll(EngineCore& core, std::vector<Tracked>& tracked) {
  for (Tracked& t : tracked) {
    t.stream = std::make_shared<RequestStream>(t.request.id);
    absl::Status s = core.AddRequest(t.request, t.stream);
    if (!s.ok()) return ::testing::AssertionFailure() << t.request.id << ": " << s;
  }
  return ::testing::AssertionSuccess();
}

// Drains the streams of the requests added so far.
inline void DrainAll(std::vector<Tracked>& tracked) {
  for (Tracked& t : tracked) {
    if (t.stream) Drain(*t.stream, &t.output);
  }
}

// Steps `core` until no request is alive (at most `max_steps`), draining the
// streams after every step. Returns the number of steps.
inline int64_t RunToCompletion(EngineCore& core, std::vector<Tracked>& tracked,
                               int64_t max_steps = 100000) {
  int64_t steps = 0;
  while (core.has_work() && steps < max_steps) {
    core.Step();
    ++steps;
    DrainAll(tracked);
  }
  DrainAll(tracked);
  return steps;
}

// Runs `request` alone in a fresh engine over `model` and returns its output.
inline Output RunAlone(const Checkpoint& model, const EngineConfig& config,
                       const EngineRequest& request) {
  absl::StatusOr<std::unique_ptr<EngineCore>> core =
      EngineCore::ForCheckpoint(model, /*tokenizer=*/nullptr, config);
  EXPECT_TRUE(core.ok()) << core.status();
  if (!core.ok()) return {};
  std::vector<Tracked> tracked(1);
  tracked[0].request = request;
  EXPECT_TRUE(AddAll(**core, tracked));
  RunToCompletion(**core, tracked);
  EXPECT_FALSE((*core)->has_work());
  return tracked[0].output;
}

// What comparing many pairs of outputs found.
struct CompareStats {
  int64_t num_compared_tokens = 0;
  int64_t num_near_ties = 0;      // near-tie steps met while comparing
  int64_t num_diverged = 0;       // requests whose tokens differed at a near-tie
  bool bitwise_identical = true;  // every compared logprob bit for bit
  double max_logprob_diff = 0.0;

  void Print(const char* what) const {
    std::printf(
        "%s: %lld tokens compared, max logprob diff %.3g, %lld near-ties, %lld "
        "requests diverged at one, bitwise identical: %s\n",
        what, static_cast<long long>(num_compared_tokens), max_logprob_diff,
        static_cast<long long>(num_near_ties), static_cast<long long>(num_diverged),
        bitwise_identical ? "yes" : "no");
  }
  void Record(const std::string& prefix) const {
    ::testing::Test::RecordProperty(prefix + "_near_ties", static_cast<int>(num_near_ties));
    ::testing::Test::RecordProperty(prefix + "_diverged", static_cast<int>(num_diverged));
    ::testing::Test::RecordProperty(prefix + "_bitwise", bitwise_identical ? "yes" : "no");
  }
};

// Whether `actual` is the same output as `expected` in the sense above.
// Both must have been run with logprobs >= 2. Where the tokens agree at a
// near-tie the comparison goes on (the histories are still the same).
inline ::testing::AssertionResult SameOutput(const Output& expected, const Output& actual,
                                             double tolerance, CompareStats* stats) {
  if (!expected.finished() || !actual.finished()) {
    return ::testing::AssertionFailure() << "an output has no finish event";
  }
  const size_t n = std::min(expected.token_ids.size(), actual.token_ids.size());
  for (size_t i = 0; i < n; ++i) {
    const std::vector<TopLogprob>& te = expected.top_logprobs[i];
    const std::vector<TopLogprob>& ta = actual.top_logprobs[i];
    if (te.size() < 2 || ta.size() < 2) {
      return ::testing::AssertionFailure() << "token " << i << " has fewer than 2 top logprobs";
    }
    const bool near_tie =
        te[0].logprob - te[1].logprob < tolerance || ta[0].logprob - ta[1].logprob < tolerance;
    if (near_tie) ++stats->num_near_ties;
    if (expected.token_ids[i] != actual.token_ids[i]) {
      if (near_tie) {
        ++stats->num_diverged;
        return ::testing::AssertionSuccess();
      }
      return ::testing::AssertionFailure()
             << "token " << i << " differs: " << expected.token_ids[i] << " (logprob "
             << expected.logprobs[i] << ") vs " << actual.token_ids[i] << " (logprob "
             << actual.logprobs[i] << "); top-2 gaps " << te[0].logprob - te[1].logprob << " and "
             << ta[0].logprob - ta[1].logprob;
    }
    ++stats->num_compared_tokens;
    const double values[][2] = {{expected.logprobs[i], actual.logprobs[i]},
                                {te[0].logprob, ta[0].logprob},
                                {te[1].logprob, ta[1].logprob}};
    for (const auto& v : values) {
      const double diff = std::abs(v[0] - v[1]);
      stats->max_logprob_diff = std::max(stats->max_logprob_diff, diff);
      if (v[0] != v[1]) stats->bitwise_identical = false;
      if (!(diff <= tolerance)) {
        return ::testing::AssertionFailure()
               << "token " << i << ": logprob " << v[0] << " vs " << v[1] << " (diff " << diff
               << " > " << tolerance << ")";
      }
    }
  }
  if (expected.token_ids.size() != actual.token_ids.size()) {
    return ::testing::AssertionFailure() << "lengths differ: " << expected.token_ids.size()
                                         << " vs " << actual.token_ids.size() << " tokens";
  }
  if (expected.finish_reason() != actual.finish_reason()) {
    return ::testing::AssertionFailure()
           << "finish reasons differ: " << FinishReasonName(expected.finish_reason()) << " vs "
           << FinishReasonName(actual.finish_reason());
  }
  return ::testing::AssertionSuccess();
}

// A stream ended properly: exactly one finish event, the last one.
inline ::testing::AssertionResult EndedOnce(const Output& out) {
  if (out.num_finish_events != 1) {
    return ::testing::AssertionFailure() << out.num_finish_events << " finish events";
  }
  if (out.num_events_after_finish != 0) {
    return ::testing::AssertionFailure()
           << out.num_events_after_finish << " events after the finish event";
  }
  if (out.finish->completion_tokens != static_cast<int64_t>(out.token_ids.size())) {
    return ::testing::AssertionFailure() << "completion_tokens " << out.finish->completion_tokens
                                         << " but " << out.token_ids.size() << " token events";
  }
  return ::testing::AssertionSuccess();
}

}  // namespace fox::testing
