#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/engine_core.h"
#include "engine/request_stream.h"
#include "models/checkpoint.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_models.h"

namespace fox {
namespace {

// Thousands of EngineCore steps on a tiny FoX-Pro model with a small KV pool,
// random arrivals, lengths, sampling parameters and aborts. After every step
// the pool, the block tables and the scheduler queues must agree, and every
// stream must be well-formed; at the end every block is back in the pool.

// Heads 0 and 1 forget within tens of tokens (their blocks are evicted);
// heads 2 and 3 keep everything, so long requests outgrow the pool.
const std::vector<float> kForgetGateBias = {-2.0f, -2.0f, 8.0f, 8.0f};
constexpr int64_t kNumTables = 8;  // 2 layers x 4 heads

struct RandomRunOptions {
  uint64_t seed = 1;
  int64_t num_steps = 3000;  // steps with arrivals and aborts
  int64_t num_kv_blocks = 96;
  int32_t block_size = 4;
  int64_t max_num_batched_tokens = 16;
  int32_t max_num_seqs = 6;
  bool acp = true;
  DType kv_dtype = DType::kF32;
  // After the last step with arrivals: abort everything (true) or step until
  // every request has finished (false).
  bool abort_all_at_end = false;
};

struct RunTotals {
  int64_t steps = 0;
  int64_t requests = 0;
  int64_t preemptions = 0;
  int64_t blocks_evicted = 0;
  int64_t aborts = 0;
  int64_t failures = 0;
  int64_t refusals = 0;  // without eviction: more than the whole pool, refused at submission
  int64_t stops = 0;
  int64_t lengths = 0;
  int64_t max_blocks_used = 0;
  int64_t max_first_live_block = 0;  // far into a table: its freed prefix was compacted
};

// What the test knows of one request it submitted.
struct Tracked {
  std::shared_ptr<RequestStream> stream;
  SamplingParams params;
  int64_t num_prompt_tokens = 0;
  int64_t num_token_events = 0;
  int32_t last_token = -1;
  bool expect_stop = false;  // a stop token past min_tokens was sampled
  bool aborted = false;      // by the test
  std::optional<TokenEvent> finish;
};

class RandomEngineRun {
 public:
  RandomEngineRun(const RandomRunOptions& options, const Checkpoint& model)
      : options_(options), rng_(options.seed) {
    config_.num_kv_blocks = options.num_kv_blocks;
    config_.block_size = options.block_size;
    config_.kv_dtype = options.kv_dtype;
    config_.max_model_len = 128;
    config_.max_num_batched_tokens = options.max_num_batched_tokens;
    config_.max_num_seqs = options.max_num_seqs;
    config_.cpu_threads = 1;
    config_.acp = options.acp;
    absl::StatusOr<std::unique_ptr<EngineCore>> core =
        EngineCore::ForCheckpoint(model, /*tokenizer=*/nullptr, config_);
    EXPECT_TRUE(core.ok()) << core.status();
    if (core.ok()) core_ = *std::move(core);
  }

  // Runs the whole scenario; a fatal failure stops it early.
  RunTotals Run() {
    if (core_ == nullptr) return totals_;
    EXPECT_EQ(core_->evictor().enabled(), options_.acp);
    for (int64_t i = 0; i < options_.num_steps; ++i) {
      const size_t max_live = static_cast<size_t>(config_.max_num_seqs) + 4;
      if (live_.size() < max_live && Uniform(0, 99) < 35) AddRandomRequest();
      if (!live_.empty() && Uniform(0, 99) < 2) AbortRandomRequest();
      if (Uniform(0, 999) == 0) {
        EXPECT_FALSE(core_->Abort("no-such-request"));
      }
      Step();
      if (::testing::Test::HasFatalFailure()) return totals_;
    }
    if (options_.abort_all_at_end) {
      for (const std::string& id : live_) tracked_[id].aborted = true;
      totals_.aborts += static_cast<int64_t>(live_.size());
      core_->AbortAll();
      DrainAll(core_->TakeFinishedIds());
      CheckInvariants();
    } else {
      for (int64_t i = 0; i < 100000 && core_->has_work(); ++i) {
        Step();
        if (::testing::Test::HasFatalFailure()) return totals_;
      }
    }
    EXPECT_FALSE(core_->has_work());
    EXPECT_TRUE(live_.empty());
    EXPECT_EQ(core_->pool().num_free(), core_->pool().num_blocks());
    EXPECT_TRUE(core_->scheduler().running().empty());
    EXPECT_TRUE(core_->scheduler().waiting().empty());

    const EngineStats stats = core_->Stats();
    const EngineCounters& counters = stats.counters;
    EXPECT_EQ(counters.preemptions, totals_.preemptions);
    EXPECT_EQ(counters.finished_by(FinishReason::kAbort), totals_.aborts);
    EXPECT_EQ(counters.finished_by(FinishReason::kError), totals_.failures);
    EXPECT_EQ(counters.finished_by(FinishReason::kStop), totals_.stops);
    EXPECT_EQ(counters.finished_by(FinishReason::kLength), totals_.lengths);
    int64_t token_events = 0, request_preemptions = 0;
    for (const auto& [id, t] : tracked_) {
      EXPECT_TRUE(t.finish.has_value()) << id;
      EXPECT_TRUE(t.stream->finished()) << id;
      EXPECT_FALSE(t.stream->TryNext().has_value()) << id << ": event after the finish";
      token_events += t.num_token_events;
      if (t.finish) request_preemptions += t.finish->num_preemptions;
    }
    EXPECT_EQ(counters.generation_tokens, token_events);
    EXPECT_EQ(request_preemptions, totals_.preemptions);
    totals_.blocks_evicted = counters.blocks_evicted;
    totals_.steps = counters.steps;
    return totals_;
  }

 private:
  int64_t Uniform(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng_);
  }

  void AddRandomRequest() {
    const FoxConfig& model = core_->model_config();
    EngineRequest request;
    request.id = absl::StrCat("r", next_id_++);
    // Mostly short prompts, some long ones that only fit alone, a few that
    // outgrow the pool even alone (with their output).
    const int64_t kind = Uniform(0, 99);
    const int64_t prompt_len = kind < 70   ? Uniform(1, 24)
                               : kind < 95 ? Uniform(25, 60)
                                           : Uniform(61, 100);
    for (int64_t i = 0; i < prompt_len; ++i) {
      request.prompt_ids.push_back(static_cast<int32_t>(Uniform(0, model.vocab_size - 1)));
    }
    SamplingParams& p = request.params;
    p.max_tokens = Uniform(1, std::min<int64_t>(32, config_.max_model_len - prompt_len));
    switch (Uniform(0, 2)) {
      case 0:
        p.temperature = 0.0f;  // greedy
        break;
      case 1:
        p.temperature = 1.0f;
        p.seed = static_cast<uint64_t>(Uniform(0, 1 << 30));
        break;
      default:
        p.temperature = 0.8f;
        p.top_k = 20;
        p.top_p = 0.9f;
        p.repetition_penalty = 1.1f;
        p.seed = static_cast<uint64_t>(Uniform(0, 1 << 30));
        break;
    }
    if (Uniform(0, 3) == 0) {
      for (int i = 0; i < 8; ++i) {
        p.stop_token_ids.push_back(static_cast<int32_t>(Uniform(0, model.vocab_size - 1)));
      }
      p.min_tokens = Uniform(0, p.max_tokens);
    }
    if (Uniform(0, 4) == 0) p.logprobs = static_cast<int32_t>(Uniform(0, 5));

    Tracked tracked;
    tracked.stream = std::make_shared<RequestStream>(request.id);
    tracked.params = p;
    tracked.num_prompt_tokens = prompt_len;
    const std::string id = request.id;
    // Without eviction a request the whole pool cannot hold is refused
    // up front, exactly when its blocks outnumber the pool's.
    const int64_t cached = prompt_len + p.max_tokens - 1;
    const int64_t needed = kNumTables * ((cached + config_.block_size - 1) / config_.block_size);
    const bool refuse = !options_.acp && needed > config_.num_kv_blocks;
    absl::Status status = core_->AddRequest(std::move(request), tracked.stream);
    if (refuse) {
      ASSERT_TRUE(absl::IsInvalidArgument(status)) << status;
      EXPECT_NE(status.message().find("more than the whole KV cache holds"), std::string::npos)
          << status;
      ++totals_.refusals;
      return;
    }
    ASSERT_TRUE(status.ok()) << status;
    tracked_.emplace(id, std::move(tracked));
    live_.insert(id);
    ++totals_.requests;

    // A second request under a live id is refused and changes nothing.
    if (Uniform(0, 49) == 0) {
      EngineRequest dup;
      dup.id = id;
      dup.prompt_ids = {1, 2, 3};
      EXPECT_EQ(core_->AddRequest(std::move(dup), std::make_shared<RequestStream>(id)).code(),
                absl::StatusCode::kAlreadyExists);
    }
  }

  void AbortRandomRequest() {
    auto it = live_.begin();
    std::advance(it, Uniform(0, static_cast<int64_t>(live_.size()) - 1));
    const std::string id = *it;
    tracked_[id].aborted = true;
    ++totals_.aborts;
    EXPECT_TRUE(core_->Abort(id)) << id;
    EXPECT_FALSE(core_->Abort(id)) << id << " aborted twice";
    DrainAll(core_->TakeFinishedIds());
    CheckInvariants();
  }

  void Step() {
    const StepResult result = core_->Step();
    EXPECT_LE(result.num_batched_tokens, config_.max_num_batched_tokens);
    EXPECT_LE(result.num_scheduled_requests, config_.max_num_seqs);
    if (result.num_scheduled_requests > 0) {
      EXPECT_GT(result.num_batched_tokens, 0);
    }
    totals_.preemptions += result.num_preempted;
    std::vector<std::string> finished = core_->TakeFinishedIds();
    std::vector<std::string> in_result = result.finished_ids;
    std::sort(finished.begin(), finished.end());
    std::sort(in_result.begin(), in_result.end());
    EXPECT_EQ(finished, in_result);
    DrainAll(finished);
    CheckInvariants();
  }

  // Takes every queued event of the live requests; `finished_ids` are those
  // the engine says finished since the last drain, and exactly those must
  // deliver their finish event now.
  void DrainAll(const std::vector<std::string>& finished_ids) {
    const std::set<std::string> expected(finished_ids.begin(), finished_ids.end());
    std::set<std::string> got;
    for (auto& [id, t] : tracked_) {
      while (std::optional<TokenEvent> event = t.stream->TryNext()) {
        ASSERT_FALSE(t.finish.has_value()) << id << ": an event after the finish event";
        if (t.expect_stop) {
          EXPECT_TRUE(event->is_finish() && event->finish_reason == FinishReason::kStop)
              << id << ": output went on after stop token " << t.last_token;
        }
        if (event->is_finish()) {
          CheckFinish(id, t, *event);
          t.finish = std::move(*event);
          got.insert(id);
          live_.erase(id);
        } else {
          CheckToken(id, t, *event);
        }
      }
    }
    EXPECT_EQ(got, expected);
  }

  void CheckToken(const std::string& id, Tracked& t, const TokenEvent& event) {
    ++t.num_token_events;
    t.last_token = event.token_id;
    EXPECT_GE(event.token_id, 0) << id;
    EXPECT_LT(event.token_id, core_->model_config().vocab_size) << id;
    EXPECT_TRUE(std::isfinite(event.logprob) && event.logprob <= 0.0f)
        << id << " " << event.logprob;
    EXPECT_LE(t.num_token_events, t.params.max_tokens) << id;
    EXPECT_EQ(event.top_logprobs.size(), static_cast<size_t>(t.params.logprobs.value_or(0))) << id;
    const bool is_stop_token = std::count(t.params.stop_token_ids.begin(),
                                          t.params.stop_token_ids.end(), event.token_id) > 0;
    // The sampler suppresses stop tokens until min_tokens are out; after
    // that, one ends the output at once.
    EXPECT_FALSE(is_stop_token && t.num_token_events <= t.params.min_tokens)
        << id << " sampled stop token " << event.token_id << " before min_tokens";
    t.expect_stop = is_stop_token;
  }

  void CheckFinish(const std::string& id, const Tracked& t, const TokenEvent& event) {
    EXPECT_EQ(event.completion_tokens, t.num_token_events) << id;
    EXPECT_EQ(event.prompt_tokens, t.num_prompt_tokens) << id;
    EXPECT_EQ(core_->Find(id), nullptr) << id << " is alive after its finish event";
    switch (event.finish_reason) {
      case FinishReason::kLength:
        ++totals_.lengths;
        EXPECT_EQ(event.completion_tokens, t.params.max_tokens) << id;
        EXPECT_FALSE(t.aborted) << id;
        break;
      case FinishReason::kStop:
        ++totals_.stops;
        EXPECT_FALSE(t.aborted) << id;
        ASSERT_TRUE(event.stop_token_id.has_value()) << id;  // no EOS in this model
        EXPECT_EQ(*event.stop_token_id, t.last_token) << id;
        EXPECT_NE(std::count(t.params.stop_token_ids.begin(), t.params.stop_token_ids.end(),
                             t.last_token),
                  0)
            << id;
        EXPECT_GT(event.completion_tokens, t.params.min_tokens) << id;
        EXPECT_LE(event.completion_tokens, t.params.max_tokens) << id;
        break;
      case FinishReason::kAbort:
        EXPECT_TRUE(t.aborted) << id << " aborted by the engine";
        EXPECT_LT(event.completion_tokens, t.params.max_tokens) << id;
        break;
      case FinishReason::kError: {
        ++totals_.failures;
        EXPECT_FALSE(t.aborted) << id;
        EXPECT_FALSE(event.error.empty()) << id;
        // Failing means not even one more block per table fit with every
        // other request's blocks freed: the request held more than
        // num_blocks - num_tables blocks, at most one per table per
        // block_size tokens.
        const int64_t num_tokens = event.prompt_tokens + event.completion_tokens;
        EXPECT_GT(num_tokens * kNumTables,
                  int64_t{config_.block_size} * (config_.num_kv_blocks - kNumTables))
            << id << " failed with " << num_tokens << " tokens";
        break;
      }
      case FinishReason::kNone:
        ADD_FAILURE() << id << ": finish event without a reason";
        break;
    }
  }

  // The pool, every live request's tables and the scheduler queues agree.
  void CheckInvariants() {
    const BlockPool& pool = core_->pool();
    const Scheduler& scheduler = core_->scheduler();
    const int64_t bs = config_.block_size;
    ASSERT_EQ(core_->num_requests(), static_cast<int64_t>(live_.size()));
    ASSERT_EQ(static_cast<int64_t>(scheduler.running().size() + scheduler.waiting().size()),
              core_->num_requests());
    ASSERT_LE(static_cast<int32_t>(scheduler.running().size()), config_.max_num_seqs);

    std::vector<int8_t> held(pool.num_blocks(), 0);
    int64_t live_blocks = 0;
    for (const std::string& id : live_) {
      const Request* r = core_->Find(id);
      ASSERT_NE(r, nullptr) << id;
      const SequenceBlocks& blocks = r->blocks;
      // Blocks exist for exactly the computed tokens, in every table alike.
      const int64_t end = (r->num_computed_tokens + bs - 1) / bs;
      ASSERT_EQ(r->state.num_tokens, r->num_computed_tokens) << id;
      ASSERT_LE(r->num_computed_tokens, r->num_tokens()) << id;
      ASSERT_GE(r->num_tokens(), r->num_prompt_tokens) << id;
      int64_t table_blocks = 0;
      for (int32_t t = 0; t < blocks.num_tables(); ++t) {
        const int64_t first = blocks.first_live_block(t);
        totals_.max_first_live_block = std::max(totals_.max_first_live_block, first);
        ASSERT_EQ(blocks.end_block(t), end) << id << " table " << t;
        ASSERT_LE(first, end) << id << " table " << t;
        // The block of the newest token is never evicted.
        if (end > 0) {
          ASSERT_LT(first, end) << id << " table " << t;
        }
        if (!options_.acp) {
          ASSERT_EQ(first, 0) << id << " table " << t;
        }
        for (int64_t logical = first; logical < end; ++logical) {
          const int32_t b = blocks.pool_block(t, logical);
          ASSERT_TRUE(b >= 0 && b < pool.num_blocks()) << id << " block " << b;
          ASSERT_FALSE(pool.IsFree(b)) << id << " holds free block " << b;
          ASSERT_EQ(held[b], 0) << "block " << b << " held twice (" << id << ")";
          held[b] = 1;
        }
        table_blocks += end - first;
      }
      ASSERT_EQ(blocks.num_live_blocks(), table_blocks) << id;
      live_blocks += table_blocks;
    }
    ASSERT_EQ(pool.num_used(), live_blocks);
    totals_.max_blocks_used = std::max<int64_t>(totals_.max_blocks_used, pool.num_used());

    for (const Request* r : scheduler.running()) {
      ASSERT_EQ(r->status, RequestStatus::kRunning) << r->id;
      // A running request always has a token to compute next.
      ASSERT_LT(r->num_computed_tokens, r->num_tokens()) << r->id;
      ASSERT_LT(r->num_output_tokens(), tracked_[r->id].params.max_tokens) << r->id;
    }
    for (const Request* r : scheduler.waiting()) {
      ASSERT_TRUE(r->status == RequestStatus::kWaiting || r->status == RequestStatus::kPreempted)
          << r->id;
      ASSERT_EQ(r->num_computed_tokens, 0) << r->id;
      ASSERT_EQ(r->blocks.num_live_blocks(), 0) << r->id;
    }
  }

  const RandomRunOptions options_;
  EngineConfig config_;
  std::unique_ptr<EngineCore> core_;
  std::mt19937_64 rng_;
  int64_t next_id_ = 0;
  std::map<std::string, Tracked> tracked_;
  std::set<std::string> live_;  // submitted, finish event not yet seen
  RunTotals totals_;
};

absl::StatusOr<Checkpoint> WriteAndLoadModel(const testing::TempDir& dir, uint64_t seed) {
  const FoxConfig config = testing::SmallTestConfig(/*pro=*/true);
  if (config.num_layers * config.num_heads != kNumTables) {
    return absl::InternalError("the test model's shape changed");
  }
  RandomInitOptions init;
  init.seed = seed;
  init.fgate_bias = kForgetGateBias;
  absl::StatusOr<TensorMap> written = testing::WriteRandomTestModel(dir.path(), config, init);
  if (!written.ok()) return written.status();
  return LoadCheckpoint(dir.path());
}

void Report(const char* name, const RunTotals& t) {
  std::printf(
      "%s: %lld steps, %lld requests: %lld preemptions, %lld blocks evicted, %lld aborts, "
      "%lld failures, %lld refused, %lld stop, %lld length; peak %lld blocks in use; first live block up to "
      "%lld\n",
      name, static_cast<long long>(t.steps), static_cast<long long>(t.requests),
      static_cast<long long>(t.preemptions), static_cast<long long>(t.blocks_evicted),
      static_cast<long long>(t.aborts), static_cast<long long>(t.failures),
      static_cast<long long>(t.refusals), static_cast<long long>(t.stops), static_cast<long long>(t.lengths),
      static_cast<long long>(t.max_blocks_used), static_cast<long long>(t.max_first_live_block));
}

void RecordTotals(const RunTotals& t) {
  ::testing::Test::RecordProperty("preemptions", static_cast<int>(t.preemptions));
  ::testing::Test::RecordProperty("blocks_evicted", static_cast<int>(t.blocks_evicted));
  ::testing::Test::RecordProperty("aborts", static_cast<int>(t.aborts));
  ::testing::Test::RecordProperty("failures", static_cast<int>(t.failures));
}

// ACP on, float32 KV, four pool geometries and limits: preemption,
// eviction, aborts and requests that fail alone all happen, and the
// bookkeeping holds after every step; everything left at the end runs to
// completion.
TEST(EngineRandomTest, ThousandsOfStepsKeepPoolTablesAndStreamsConsistent) {
  testing::TempDir dir;
  absl::StatusOr<Checkpoint> model = WriteAndLoadModel(dir, 21);
  ASSERT_TRUE(model.ok()) << model.status();

  std::vector<RandomRunOptions> runs(4);
  runs[0].seed = 7;  // the defaults: 96 blocks of 4, 16 tokens, 6 requests
  runs[0].num_steps = 20000;
  runs[1].seed = 8;
  runs[1].num_steps = 6000;
  runs[1].num_kv_blocks = 128;
  runs[1].block_size = 2;
  runs[1].max_num_batched_tokens = 5;
  runs[1].max_num_seqs = 3;
  runs[2].seed = 9;
  runs[2].num_steps = 4000;
  runs[2].num_kv_blocks = 200;
  runs[2].block_size = 8;
  runs[2].max_num_batched_tokens = 40;
  runs[2].max_num_seqs = 12;
  runs[3].seed = 10;  // one token per block: long tables, compacted as they are evicted
  runs[3].num_steps = 3000;
  runs[3].num_kv_blocks = 480;
  runs[3].block_size = 1;
  runs[3].max_num_batched_tokens = 24;
  runs[3].max_num_seqs = 8;

  RunTotals all;
  for (const RandomRunOptions& options : runs) {
    SCOPED_TRACE(::testing::Message() << "seed " << options.seed);
    RandomEngineRun run(options, *model);
    const RunTotals totals = run.Run();
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    Report(absl::StrCat("acp, float32, seed ", options.seed).c_str(), totals);
    EXPECT_GT(totals.steps, options.num_steps / 2);
    EXPECT_GT(totals.preemptions, 0);
    EXPECT_GT(totals.blocks_evicted, 0);
    EXPECT_GT(totals.aborts, 0);
    EXPECT_GT(totals.lengths, 0);
    // The pool ran dry: less than one block per table was left.
    EXPECT_GT(totals.max_blocks_used, options.num_kv_blocks - kNumTables);
    all.preemptions += totals.preemptions;
    all.blocks_evicted += totals.blocks_evicted;
    all.aborts += totals.aborts;
    all.failures += totals.failures;
    all.stops += totals.stops;
    all.max_first_live_block = std::max(all.max_first_live_block, totals.max_first_live_block);
  }
  RecordTotals(all);
  // Tables ran past 64 evicted blocks (SequenceBlocks compacts its storage then).
  EXPECT_GE(all.max_first_live_block, 64);
  EXPECT_GT(all.failures, 0);
  EXPECT_GT(all.stops, 0);
}

// ACP off, bfloat16 KV: nothing is evicted, requests the pool cannot hold are
// refused at submission, preemption still happens, and aborting everything at
// the end returns every block.
TEST(EngineRandomTest, WithoutAcpInBfloat16NothingIsEvictedAndAbortAllFreesThePool) {
  testing::TempDir dir;
  absl::StatusOr<Checkpoint> model = WriteAndLoadModel(dir, 22);
  ASSERT_TRUE(model.ok()) << model.status();
  RandomRunOptions options;
  options.seed = 11;
  options.num_steps = 3000;
  options.acp = false;
  options.kv_dtype = DType::kBF16;
  options.abort_all_at_end = true;
  RandomEngineRun run(options, *model);
  const RunTotals totals = run.Run();
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  Report("no acp, bfloat16", totals);
  RecordTotals(totals);
  EXPECT_GT(totals.steps, options.num_steps / 2);
  EXPECT_GT(totals.preemptions, 0);
  EXPECT_EQ(totals.blocks_evicted, 0);
  EXPECT_GT(totals.aborts, 0);
  // Whatever was admitted fits the pool alone, so nothing fails half-way.
  EXPECT_GT(totals.refusals, 0);
  EXPECT_EQ(totals.failures, 0);
  EXPECT_GT(totals.max_blocks_used, options.num_kv_blocks - kNumTables);  // the pool ran dry
}

}  // namespace
}  // namespace fox
