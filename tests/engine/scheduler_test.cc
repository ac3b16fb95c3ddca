#include "engine/scheduler.h"

#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/test_models.h"

namespace fox {
namespace {

// Scripted steps on the scheduler alone: the tests play the engine, adding
// each step's token counts to num_computed_tokens and appending a fake
// sampled token when a request has computed all of its tokens. The model is
// 2 layers x 4 heads, so every request has 8 block tables and grows by 8
// blocks (one per table) at a time. The pool hands out 0, 1, 2, ... and
// reuses the most recently freed block first.

constexpr int32_t kBlockSize = 4;
constexpr int32_t kNumTables = 8;
constexpr int32_t kSampledToken = 7;

using Plan = std::vector<std::pair<std::string, int64_t>>;
using Tables = std::vector<std::vector<int32_t>>;

Plan Scheduled(const ScheduleOutput& out) {
  Plan plan;
  for (const ScheduledRequest& s : out.scheduled) plan.emplace_back(s.request->id, s.num_tokens);
  return plan;
}

template <typename Container>
std::vector<std::string> Ids(const Container& requests) {
  std::vector<std::string> ids;
  for (const Request* r : requests) ids.push_back(r->id);
  return ids;
}

// The pool ids of every table of `request`, live blocks only.
Tables BlockIds(Request* request) {
  Tables tables;
  for (const HeadBlockTable& view : request->blocks.Views()) {
    tables.emplace_back(view.blocks, view.blocks + view.num_blocks);
  }
  return tables;
}

// Tables whose table t holds `ids(t)`.
Tables PerTable(const std::function<std::vector<int32_t>(int32_t)>& ids) {
  Tables tables;
  for (int32_t t = 0; t < kNumTables; ++t) tables.push_back(ids(t));
  return tables;
}

class SchedulerTest : public ::testing::Test {
 protected:
  void Init(int32_t num_blocks, int64_t max_num_batched_tokens, int32_t max_num_seqs) {
    ASSERT_EQ(config_.num_layers * config_.num_heads, kNumTables);
    pool_ = std::make_unique<BlockPool>(num_blocks, kBlockSize, config_.head_dim, DType::kF32);
    scheduler_ =
        std::make_unique<Scheduler>(SchedulerConfig{max_num_batched_tokens, max_num_seqs}, *pool_);
  }

  // Queues a request with a prompt of `prompt_len` tokens.
  Request* Add(const std::string& id, int64_t prompt_len) {
    EngineRequest engine_request;
    engine_request.id = id;
    for (int64_t i = 0; i < prompt_len; ++i) {
      engine_request.prompt_ids.push_back(static_cast<int32_t>(i % config_.vocab_size));
    }
    engine_request.params.max_tokens = 1000;
    requests_.push_back(std::make_unique<Request>(std::move(engine_request), config_,
                                                  config_.eos_token_id, /*tokenizer=*/nullptr,
                                                  /*stream=*/nullptr, Clock::now()));
    scheduler_->AddWaiting(requests_.back().get());
    return requests_.back().get();
  }

  // Schedules a step, checks the pool's accounting and plays the engine's part.
  ScheduleOutput Step() {
    ScheduleOutput out = scheduler_->Schedule();
    int64_t live = 0;
    for (const auto& r : requests_) live += r->blocks.num_live_blocks();
    EXPECT_EQ(pool_->num_used(), live);
    for (const ScheduledRequest& s : out.scheduled) {
      Request* r = s.request;
      EXPECT_EQ(r->status, RequestStatus::kRunning) << r->id;
      r->num_computed_tokens += s.num_tokens;
      EXPECT_LE(r->num_computed_tokens, r->num_tokens()) << r->id;
      EXPECT_GE(r->blocks.end_block(0) * kBlockSize, r->num_computed_tokens) << r->id;
      if (r->num_computed_tokens == r->num_tokens()) r->token_ids.push_back(kSampledToken);
    }
    return out;
  }

  void ExpectPoolFree() {
    EXPECT_TRUE(scheduler_->running().empty());
    EXPECT_TRUE(scheduler_->waiting().empty());
    EXPECT_EQ(pool_->num_free(), pool_->num_blocks());
  }

  const FoxConfig config_ = testing::SmallTestConfig(/*pro=*/true);
  std::unique_ptr<BlockPool> pool_;
  std::unique_ptr<Scheduler> scheduler_;
  std::vector<std::unique_ptr<Request>> requests_;
};

// --max-num-batched-tokens: running requests take their decode token first
// and prefills fill the rest of the budget in chunks; a waiting request is
// admitted only when budget remains.
TEST_F(SchedulerTest, TokenBudgetSplitsPrefillsIntoChunksSharedWithDecodes) {
  Init(/*num_blocks=*/128, /*max_num_batched_tokens=*/8, /*max_num_seqs=*/4);
  Request* a = Add("a", 6);
  Request* b = Add("b", 10);
  Request* c = Add("c", 9);

  ScheduleOutput out = Step();
  EXPECT_EQ(Scheduled(out), (Plan{{"a", 6}, {"b", 2}}));
  EXPECT_EQ(out.num_batched_tokens, 8);
  EXPECT_TRUE(out.preempted.empty());
  EXPECT_TRUE(out.failed.empty());
  EXPECT_EQ(Ids(scheduler_->waiting()), (std::vector<std::string>{"c"}));
  EXPECT_EQ(BlockIds(a), PerTable([](int32_t t) {
              return std::vector<int32_t>{2 * t, 2 * t + 1};
            }));
  EXPECT_EQ(BlockIds(b), PerTable([](int32_t t) { return std::vector<int32_t>{16 + t}; }));
  EXPECT_EQ(pool_->num_free(), 128 - 24);
  EXPECT_EQ(a->num_tokens(), 7);  // the prompt is done: a token was sampled

  out = Step();  // a decodes; b's next chunk takes the other 7 tokens
  EXPECT_EQ(Scheduled(out), (Plan{{"a", 1}, {"b", 7}}));
  EXPECT_EQ(out.num_batched_tokens, 8);
  EXPECT_EQ(Ids(scheduler_->waiting()), (std::vector<std::string>{"c"}));
  EXPECT_EQ(BlockIds(b), PerTable([](int32_t t) {
              return std::vector<int32_t>{16 + t, 24 + 2 * t, 25 + 2 * t};
            }));
  EXPECT_EQ(pool_->num_free(), 128 - 40);

  out = Step();  // b's last prompt token; c gets the 6 tokens left
  EXPECT_EQ(Scheduled(out), (Plan{{"a", 1}, {"b", 1}, {"c", 6}}));
  EXPECT_EQ(out.num_batched_tokens, 8);
  EXPECT_TRUE(scheduler_->waiting().empty());
  EXPECT_EQ(Ids(scheduler_->running()), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(BlockIds(c), PerTable([](int32_t t) {
              return std::vector<int32_t>{40 + 2 * t, 41 + 2 * t};
            }));
  EXPECT_EQ(pool_->num_free(), 128 - 56);

  out = Step();  // a's 9th token opens its third block, then c's
  EXPECT_EQ(Scheduled(out), (Plan{{"a", 1}, {"b", 1}, {"c", 3}}));
  EXPECT_EQ(out.num_batched_tokens, 5);
  EXPECT_EQ(BlockIds(a), PerTable([](int32_t t) {
              return std::vector<int32_t>{2 * t, 2 * t + 1, 56 + t};
            }));
  EXPECT_EQ(BlockIds(c), PerTable([](int32_t t) {
              return std::vector<int32_t>{40 + 2 * t, 41 + 2 * t, 64 + t};
            }));
  EXPECT_EQ(pool_->num_free(), 128 - 72);
  EXPECT_EQ(a->num_computed_tokens, 9);
  EXPECT_EQ(b->num_computed_tokens, 11);
  EXPECT_EQ(c->num_computed_tokens, 9);

  scheduler_->Remove(b);
  EXPECT_EQ(pool_->num_free(), 128 - 48);
  scheduler_->Remove(a);
  scheduler_->Remove(c);
  ExpectPoolFree();
}

// --max-num-seqs: a third request waits with budget and blocks to spare
// until a running one leaves; then it gets blocks after the freed ones are
// reused.
TEST_F(SchedulerTest, MaxNumSeqsCapsRunningRequests) {
  Init(/*num_blocks=*/64, /*max_num_batched_tokens=*/100, /*max_num_seqs=*/2);
  Request* a = Add("a", 3);
  Request* b = Add("b", 3);
  Request* c = Add("c", 3);

  ScheduleOutput out = Step();
  EXPECT_EQ(Scheduled(out), (Plan{{"a", 3}, {"b", 3}}));
  EXPECT_EQ(out.num_batched_tokens, 6);
  EXPECT_EQ(Ids(scheduler_->waiting()), (std::vector<std::string>{"c"}));
  EXPECT_EQ(c->status, RequestStatus::kWaiting);
  EXPECT_EQ(BlockIds(a), PerTable([](int32_t t) { return std::vector<int32_t>{t}; }));
  EXPECT_EQ(BlockIds(b), PerTable([](int32_t t) { return std::vector<int32_t>{8 + t}; }));

  out = Step();
  EXPECT_EQ(Scheduled(out), (Plan{{"a", 1}, {"b", 1}}));
  EXPECT_EQ(out.num_batched_tokens, 2);
  EXPECT_EQ(Ids(scheduler_->waiting()), (std::vector<std::string>{"c"}));
  EXPECT_EQ(pool_->num_free(), 48);

  scheduler_->Remove(a);  // frees 0..7 in table order: 7 is reused first
  EXPECT_EQ(a->status, RequestStatus::kFinished);
  EXPECT_EQ(pool_->num_free(), 56);

  out = Step();
  EXPECT_EQ(Scheduled(out), (Plan{{"b", 1}, {"c", 3}}));
  EXPECT_EQ(out.num_batched_tokens, 4);
  EXPECT_EQ(BlockIds(b), PerTable([](int32_t t) { return std::vector<int32_t>{8 + t, 7 - t}; }));
  EXPECT_EQ(BlockIds(c), PerTable([](int32_t t) { return std::vector<int32_t>{16 + t}; }));
  EXPECT_EQ(Ids(scheduler_->running()), (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(pool_->num_free(), 40);

  scheduler_->Remove(b);
  scheduler_->Remove(c);
  ExpectPoolFree();
}

// FCFS: the first waiting request that does not fit stops admission, even
// when a later one would fit.
TEST_F(SchedulerTest, AdmissionStopsAtFirstWaitingRequestThatDoesNotFit) {
  Init(/*num_blocks=*/24, /*max_num_batched_tokens=*/100, /*max_num_seqs=*/8);
  Request* a = Add("a", 7);
  Request* b = Add("b", 8);  // 16 blocks
  Request* c = Add("c", 2);  // 8 blocks: would fit beside a

  ScheduleOutput out = Step();
  EXPECT_EQ(Scheduled(out), (Plan{{"a", 7}}));
  EXPECT_TRUE(out.failed.empty());
  EXPECT_EQ(Ids(scheduler_->waiting()), (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(pool_->num_free(), 8);
  EXPECT_EQ(b->blocks.num_live_blocks(), 0);  // nothing half-reserved
  EXPECT_EQ(c->blocks.num_live_blocks(), 0);

  out = Step();
  EXPECT_EQ(Scheduled(out), (Plan{{"a", 1}}));
  EXPECT_EQ(Ids(scheduler_->waiting()), (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(pool_->num_free(), 8);

  scheduler_->Remove(a);  // frees 0..15; 15 is on top
  out = Step();
  EXPECT_EQ(Scheduled(out), (Plan{{"b", 8}, {"c", 2}}));
  EXPECT_EQ(out.num_batched_tokens, 10);
  EXPECT_EQ(BlockIds(b), PerTable([](int32_t t) {
              return std::vector<int32_t>{15 - 2 * t, 14 - 2 * t};
            }));
  EXPECT_EQ(BlockIds(c), PerTable([](int32_t t) { return std::vector<int32_t>{16 + t}; }));
  EXPECT_EQ(pool_->num_free(), 0);

  scheduler_->Remove(c);
  scheduler_->Remove(b);
  ExpectPoolFree();
}

// A dry pool preempts the newest running request first; a request that is
// itself the newest preempts itself. Preempted requests go to the front of
// the waiting queue in their old order, with no blocks and nothing computed,
// and nothing is admitted in that step even where it would fit.
TEST_F(SchedulerTest, PreemptsNewestRunningRequestAndNewestPreemptsItself) {
  Init(/*num_blocks=*/28, /*max_num_batched_tokens=*/3, /*max_num_seqs=*/8);
  Request* a = Add("a", 1);
  Request* b = Add("b", 1);
  Request* c = Add("c", 1);

  ScheduleOutput out = Step();
  EXPECT_EQ(Scheduled(out), (Plan{{"a", 1}, {"b", 1}, {"c", 1}}));
  EXPECT_EQ(BlockIds(a), PerTable([](int32_t t) { return std::vector<int32_t>{t}; }));
  EXPECT_EQ(BlockIds(b), PerTable([](int32_t t) { return std::vector<int32_t>{8 + t}; }));
  EXPECT_EQ(BlockIds(c), PerTable([](int32_t t) { return std::vector<int32_t>{16 + t}; }));
  EXPECT_EQ(pool_->num_free(), 4);
  Request* d = Add("d", 1);               // no budget left for it while a, b and c decode
  for (int step = 0; step < 3; ++step) {  // tokens 2..4 stay in the first block
    out = Step();
    EXPECT_EQ(Scheduled(out), (Plan{{"a", 1}, {"b", 1}, {"c", 1}}));
    EXPECT_TRUE(out.preempted.empty());
    EXPECT_EQ(Ids(scheduler_->waiting()), (std::vector<std::string>{"d"}));
    EXPECT_EQ(pool_->num_free(), 4);
  }
  ASSERT_EQ(a->num_tokens(), 5);

  // Each 5th token needs 8 blocks and 4 are free. a takes c's; b is then
  // the newest and preempts itself.
  out = Step();
  EXPECT_EQ(Scheduled(out), (Plan{{"a", 1}}));
  EXPECT_EQ(Ids(out.preempted), (std::vector<std::string>{"c", "b"}));
  EXPECT_TRUE(out.failed.empty());
  EXPECT_EQ(out.num_batched_tokens, 1);
  EXPECT_EQ(BlockIds(a), PerTable([](int32_t t) { return std::vector<int32_t>{t, 23 - t}; }));
  EXPECT_EQ(Ids(scheduler_->running()), (std::vector<std::string>{"a"}));
  // b would fit now (2 tokens of budget, 8 of 12 free blocks) but waits,
  // ahead of d, which came later.
  EXPECT_EQ(Ids(scheduler_->waiting()), (std::vector<std::string>{"b", "c", "d"}));
  EXPECT_EQ(d->status, RequestStatus::kWaiting);
  EXPECT_EQ(pool_->num_free(), 12);
  for (Request* r : {b, c}) {
    EXPECT_EQ(r->status, RequestStatus::kPreempted) << r->id;
    EXPECT_EQ(r->num_preemptions, 1) << r->id;
    EXPECT_EQ(r->num_computed_tokens, 0) << r->id;
    EXPECT_EQ(r->num_tokens(), 5) << r->id;  // tokens are kept for recompute
    EXPECT_EQ(r->blocks.num_live_blocks(), 0) << r->id;
    EXPECT_EQ(r->blocks.end_block(0), 0) << r->id;
  }
  for (int32_t t = 0; t < kNumTables; ++t) EXPECT_TRUE(pool_->IsFree(8 + t)) << t;

  out = Step();  // b recomputes within the budget left by a's decode
  EXPECT_EQ(Scheduled(out), (Plan{{"a", 1}, {"b", 2}}));
  EXPECT_TRUE(out.preempted.empty());
  EXPECT_EQ(out.num_batched_tokens, 3);
  EXPECT_EQ(b->status, RequestStatus::kRunning);
  EXPECT_EQ(BlockIds(b), PerTable([](int32_t t) { return std::vector<int32_t>{15 - t}; }));
  EXPECT_EQ(Ids(scheduler_->waiting()), (std::vector<std::string>{"c", "d"}));
  EXPECT_EQ(pool_->num_free(), 4);

  scheduler_->Remove(c);  // preempted, holds nothing
  scheduler_->Remove(d);  // never ran
  EXPECT_EQ(pool_->num_free(), 4);
  EXPECT_TRUE(scheduler_->waiting().empty());
  scheduler_->Remove(a);
  scheduler_->Remove(b);
  ExpectPoolFree();
}

// Alone in a pool too small for its chunk, a request gets the largest chunk
// that fits, at admission and while running (eviction between steps makes
// room); when not even one more token fits it fails, its blocks return, and
// the next waiting request is admitted in the same step.
TEST_F(SchedulerTest, RequestAloneGetsSmallerChunksThenFails) {
  Init(/*num_blocks=*/20, /*max_num_batched_tokens=*/100, /*max_num_seqs=*/8);
  Request* a = Add("a", 20);  // 40 blocks: more than the pool
  Request* b = Add("b", 2);

  ScheduleOutput out = Step();  // 20 blocks: 2 per table, 8 tokens
  EXPECT_EQ(Scheduled(out), (Plan{{"a", 8}}));
  EXPECT_TRUE(out.failed.empty());
  EXPECT_EQ(Ids(scheduler_->waiting()), (std::vector<std::string>{"b"}));
  EXPECT_EQ(BlockIds(a), PerTable([](int32_t t) {
              return std::vector<int32_t>{2 * t, 2 * t + 1};
            }));
  EXPECT_EQ(pool_->num_free(), 4);

  // Eviction frees the first block of tables 0..3: 0, 2, 4, 6 (6 on top).
  for (int32_t t = 0; t < 4; ++t) a->blocks.FreeFront(*pool_, t, 1);
  ASSERT_EQ(pool_->num_free(), 8);

  out = Step();  // one more block per table: 4 tokens
  EXPECT_EQ(Scheduled(out), (Plan{{"a", 4}}));
  EXPECT_TRUE(out.preempted.empty());
  EXPECT_TRUE(out.failed.empty());
  EXPECT_EQ(
      BlockIds(a),
      (Tables{
          {1, 6}, {3, 4}, {5, 2}, {7, 0}, {8, 9, 16}, {10, 11, 17}, {12, 13, 18}, {14, 15, 19}}));
  EXPECT_EQ(a->blocks.Views()[0].first_block, 1);
  EXPECT_EQ(a->blocks.Views()[4].first_block, 0);
  EXPECT_EQ(pool_->num_free(), 0);
  EXPECT_EQ(Ids(scheduler_->waiting()), (std::vector<std::string>{"b"}));

  // No block free and nothing to preempt: a fails; b takes a's blocks,
  // freed table by table (19 last, so first out).
  out = Step();
  EXPECT_EQ(Ids(out.failed), (std::vector<std::string>{"a"}));
  EXPECT_EQ(Scheduled(out), (Plan{{"b", 2}}));
  EXPECT_TRUE(out.preempted.empty());
  EXPECT_EQ(out.num_batched_tokens, 2);
  EXPECT_EQ(a->status, RequestStatus::kFinished);
  EXPECT_EQ(a->blocks.num_live_blocks(), 0);
  EXPECT_EQ(a->num_tokens(), 20);
  EXPECT_EQ(BlockIds(b), (Tables{{19}, {15}, {14}, {18}, {13}, {12}, {17}, {11}}));
  EXPECT_EQ(Ids(scheduler_->running()), (std::vector<std::string>{"b"}));
  EXPECT_EQ(pool_->num_free(), 12);

  scheduler_->Remove(a);  // the engine removes a failed request again: harmless
  EXPECT_EQ(pool_->num_free(), 12);
  EXPECT_EQ(Ids(scheduler_->running()), (std::vector<std::string>{"b"}));
  scheduler_->Remove(b);
  ExpectPoolFree();
}

// A pool smaller than one block per table cannot hold a single token of any
// request: each waiting request fails at admission, and the queue drains.
TEST_F(SchedulerTest, RequestThatCannotHoldOneTokenFailsAtAdmission) {
  Init(/*num_blocks=*/kNumTables - 1, /*max_num_batched_tokens=*/100, /*max_num_seqs=*/8);
  Request* a = Add("a", 1);
  Request* b = Add("b", 3);

  ScheduleOutput out = Step();
  EXPECT_TRUE(out.scheduled.empty());
  EXPECT_EQ(Ids(out.failed), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(out.num_batched_tokens, 0);
  EXPECT_EQ(a->status, RequestStatus::kFinished);
  EXPECT_EQ(b->status, RequestStatus::kFinished);
  EXPECT_EQ(pool_->num_free(), kNumTables - 1);
  ExpectPoolFree();

  out = Step();  // nothing left to do
  EXPECT_TRUE(out.scheduled.empty());
  EXPECT_TRUE(out.failed.empty());
}

// Remove takes a request out wherever it is (waiting, mid-prefill, decoding)
// and returns exactly the blocks it held.
TEST_F(SchedulerTest, RemoveReturnsEveryBlockOfWaitingAndRunningRequests) {
  Init(/*num_blocks=*/40, /*max_num_batched_tokens=*/6, /*max_num_seqs=*/8);
  Request* a = Add("a", 10);
  Request* b = Add("b", 3);

  ScheduleOutput out = Step();
  EXPECT_EQ(Scheduled(out), (Plan{{"a", 6}}));
  EXPECT_EQ(pool_->num_free(), 24);
  scheduler_->Remove(b);  // waiting
  EXPECT_EQ(b->status, RequestStatus::kFinished);
  EXPECT_TRUE(scheduler_->waiting().empty());
  EXPECT_EQ(pool_->num_free(), 24);

  Request* c = Add("c", 2);
  out = Step();
  EXPECT_EQ(Scheduled(out), (Plan{{"a", 4}, {"c", 2}}));
  EXPECT_EQ(BlockIds(a), PerTable([](int32_t t) {
              return std::vector<int32_t>{2 * t, 2 * t + 1, 16 + t};
            }));
  EXPECT_EQ(BlockIds(c), PerTable([](int32_t t) { return std::vector<int32_t>{24 + t}; }));
  EXPECT_EQ(pool_->num_free(), 8);

  Request* d = Add("d", 5);
  out = Step();  // d's chunk: the 4 tokens of budget left, one block per table
  EXPECT_EQ(Scheduled(out), (Plan{{"a", 1}, {"c", 1}, {"d", 4}}));
  EXPECT_EQ(BlockIds(d), PerTable([](int32_t t) { return std::vector<int32_t>{32 + t}; }));
  EXPECT_EQ(pool_->num_free(), 0);

  scheduler_->Remove(d);  // mid-prefill
  EXPECT_EQ(d->num_computed_tokens, 0);
  EXPECT_EQ(d->blocks.num_live_blocks(), 0);
  EXPECT_EQ(pool_->num_free(), 8);
  scheduler_->Remove(a);  // decoding
  EXPECT_EQ(pool_->num_free(), 32);
  EXPECT_EQ(Ids(scheduler_->running()), (std::vector<std::string>{"c"}));
  scheduler_->Remove(c);
  ExpectPoolFree();
}

}  // namespace
}  // namespace fox
