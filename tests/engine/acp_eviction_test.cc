#include "engine/acp_eviction.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "models/checkpoint.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_models.h"

namespace fox {
namespace {

std::vector<int32_t> Ids(const HeadBlockTable& view) {
  return std::vector<int32_t>(view.blocks, view.blocks + view.num_blocks);
}

// One layer, two heads. Head 0: delta_fix = -10 (U = 0, L_max = 1, log eps =
// -10); head 1: delta_fix = -210. Both heads store the same L per token.
class ScriptedEvictionTest : public ::testing::Test {
 protected:
  static constexpr int kBlockSize = 4;

  ScriptedEvictionTest()
      : pool_(16, kBlockSize, 2, DType::kF32),
        seq_(2),
        evictor_({{0.0f, 100.0f}}, 2, /*max_model_len=*/1, /*log_eps=*/-10.0) {
    // Slots never written read as keys far in the past: evicting on one of
    // them would free a block that must stay.
    const PagedKv& kv = pool_.view();
    std::fill(kv.l_anchor, kv.l_anchor + kv.num_blocks, 0.0);
    std::fill(kv.l_offset, kv.l_offset + int64_t{kv.num_blocks} * kBlockSize, 1e6f);
    state_.last_l.assign(2, 0.0);
  }

  // Writes tokens [num_tokens, end) into both tables, L falling by `drop`
  // per token (L = 0 at position 0), and evicts.
  int64_t Step(int64_t end, double drop = 3.0) {
    const std::vector<HeadBlockTable>& views = seq_.Views();
    for (int64_t pos = state_.num_tokens; pos < end; ++pos) {
      l_.push_back(pos == 0 ? 0.0 : l_.back() - drop);
      const float k[2] = {static_cast<float>(pos), 1.0f};
      const float v[2] = {2.0f, static_cast<float>(pos)};
      for (int t = 0; t < 2; ++t) WriteKvToken(pool_.view(), views[t], pos, k, v, l_[pos]);
    }
    state_.num_tokens = end;
    state_.last_l = {l_.back(), l_.back()};
    return evictor_.Evict(state_, seq_, pool_);
  }

  BlockPool pool_;
  SequenceBlocks seq_;
  AcpEvictor evictor_;
  SequenceState state_;
  std::vector<double> l_;  // L of each position written
};

TEST_F(ScriptedEvictionTest, FreesExactBlocksNeverNewestOrPartial) {
  ASSERT_TRUE(evictor_.enabled());
  EXPECT_DOUBLE_EQ(evictor_.delta_fix(0, 0), -10.0);
  EXPECT_DOUBLE_EQ(evictor_.delta_fix(0, 1), -210.0);

  ASSERT_TRUE(seq_.Reserve(pool_, 10));  // head 0: {0, 1, 2}, head 1: {3, 4, 5}
  // 6 tokens, L = -3 * pos: block 0's newest key (3) has D = -15 + 9 = -6:
  // kept. Block 1 is partial and block 2 unwritten.
  EXPECT_EQ(Step(6), 0);
  EXPECT_EQ(pool_.num_free(), 10);

  // 10 tokens, L_now = -27: block 0 (D = -18) goes, block 1 (D = -6) stays.
  EXPECT_EQ(Step(10), 1);
  EXPECT_TRUE(pool_.IsFree(0));
  EXPECT_EQ(pool_.num_free(), 11);
  EXPECT_EQ(seq_.Views()[0].first_block, 1);
  EXPECT_EQ(Ids(seq_.Views()[0]), (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(Ids(seq_.Views()[1]), (std::vector<int32_t>{3, 4, 5}));

  // New blocks go at the end and reuse the freed id 0.
  ASSERT_TRUE(seq_.Reserve(pool_, 14));
  EXPECT_EQ(Ids(seq_.Views()[0]), (std::vector<int32_t>{1, 2, 0}));
  EXPECT_EQ(Ids(seq_.Views()[1]), (std::vector<int32_t>{3, 4, 5, 6}));
  // 14 tokens, L_now = -39: block 1 (newest key 7, D = -18) goes; block 2
  // (D = -6) stays; block 3 is partial.
  EXPECT_EQ(Step(14), 1);
  EXPECT_TRUE(pool_.IsFree(1));
  EXPECT_EQ(seq_.Views()[0].first_block, 2);

  // 16 tokens, L_now = -45: block 2 (D = -12) goes; block 3 is whole but
  // holds the newest token.
  ASSERT_TRUE(seq_.Reserve(pool_, 16));
  EXPECT_EQ(Step(16), 1);
  EXPECT_TRUE(pool_.IsFree(2));
  EXPECT_EQ(seq_.Views()[0].first_block, 3);
  EXPECT_EQ(Ids(seq_.Views()[0]), (std::vector<int32_t>{0}));

  ASSERT_TRUE(seq_.Reserve(pool_, 17));  // head 0 gets 2, head 1 gets 1
  EXPECT_EQ(Step(17), 0);                // block 3's newest key: D = -3
  EXPECT_EQ(Ids(seq_.Views()[0]), (std::vector<int32_t>{0, 2}));
  EXPECT_EQ(Ids(seq_.Views()[1]), (std::vector<int32_t>{3, 4, 5, 6, 1}));
  EXPECT_EQ(seq_.Views()[1].first_block, 0);

  // The live keys still read back at their positions.
  float k[2], v[2];
  double l = 0;
  ReadKvToken(pool_.view(), seq_.Views()[0], 12, k, v, &l);
  EXPECT_EQ(k[0], 12.0f);
  EXPECT_EQ(v[1], 12.0f);
  EXPECT_DOUBLE_EQ(l, -36.0);

  // A steep fall (50 per token) to 22 tokens, L_now = -298. Head 0: blocks 3
  // (D = -253) and 4 (newest key 19 at -198, D = -100) go; block 5 is partial
  // and its unwritten last slot reads as an ancient key, so it must not be
  // looked at. Head 1 (-210): blocks 0..3 go, block 4 stays.
  ASSERT_TRUE(seq_.Reserve(pool_, 22));  // head 0 gets 7, head 1 gets 8
  EXPECT_EQ(Step(22, 50.0), 6);
  EXPECT_EQ(seq_.Views()[0].first_block, 5);
  EXPECT_EQ(Ids(seq_.Views()[0]), (std::vector<int32_t>{7}));
  EXPECT_EQ(seq_.Views()[1].first_block, 4);
  EXPECT_EQ(Ids(seq_.Views()[1]), (std::vector<int32_t>{1, 8}));
  for (int32_t b : {0, 2, 3, 4, 5, 6}) EXPECT_TRUE(pool_.IsFree(b)) << b;

  EXPECT_EQ(seq_.num_live_blocks(), 3);
  EXPECT_EQ(seq_.num_blocks_allocated_total(), 12);
  EXPECT_EQ(pool_.num_free(), 13);
  EXPECT_EQ(seq_.ReleaseAll(pool_), 3);
  EXPECT_EQ(pool_.num_free(), 16);
}

TEST(AcpEvictionTest, WithoutStaticUNothingIsFreed) {
  AcpEvictor evictor({{}, {}}, 2, 4096, -10.0);
  EXPECT_FALSE(evictor.enabled());
  BlockPool pool(8, 2, 2, DType::kF32);
  SequenceBlocks seq(4);
  ASSERT_TRUE(seq.Reserve(pool, 4));
  const float kv[2] = {1.0f, 1.0f};
  for (int t = 0; t < 4; ++t) {
    for (int64_t pos = 0; pos < 4; ++pos) {
      WriteKvToken(pool.view(), seq.Views()[t], pos, kv, kv, -1e4 * static_cast<double>(pos));
    }
  }
  SequenceState state;
  state.num_tokens = 4;
  state.last_l.assign(4, -3e4);
  EXPECT_EQ(evictor.Evict(state, seq, pool), 0);
  EXPECT_EQ(pool.num_free(), 0);
  EXPECT_EQ(seq.ReleaseAll(pool), 8);
}

// ---------------------------------------------------------------------------
// End to end on a small FoX-Pro model whose heads 0 and 1 forget within tens
// of tokens and whose heads 2 and 3 keep everything.

constexpr int64_t kMaxModelLen = 2048;
constexpr float kLogEps = -10.0f;
constexpr int kBlockSize = 16;

std::vector<float> LogSoftmax(const float* logits, int n) {
  const float m = *std::max_element(logits, logits + n);
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += std::exp(static_cast<double>(logits[i] - m));
  std::vector<float> out(n);
  for (int i = 0; i < n; ++i) out[i] = static_cast<float>(logits[i] - m - std::log(sum));
  return out;
}

// The first live block a table should have after `state`, from the keys of a
// cache that kept everything: the leading blocks all of whose keys are below
// delta_fix, never the block of the newest token.
int64_t ExpectedFirstLive(const PagedKv& kv, const HeadBlockTable& full, int64_t num_tokens,
                          double l_now, double delta_fix) {
  const int64_t newest_block = (num_tokens - 1) / kBlockSize;
  std::vector<float> k(kv.head_dim), v(kv.head_dim);
  for (int64_t b = 0; b < newest_block; ++b) {
    for (int64_t pos = b * kBlockSize; pos < (b + 1) * kBlockSize; ++pos) {
      double l = 0;
      ReadKvToken(kv, full, pos, k.data(), v.data(), &l);
      if (!(l_now - l < delta_fix)) return b;
    }
  }
  return newest_block;
}

TEST(AcpEvictionTest, ForgettingHeadsEvictAndLogitsMatchAFullCache) {
  testing::TempDir dir;
  const FoxConfig config = testing::SmallTestConfig(/*pro=*/true);
  ASSERT_TRUE(config.qk_norm);
  RandomInitOptions init;
  init.seed = 11;
  init.fgate_bias = {-2.0f, 0.0f, 8.0f, 8.0f};
  ASSERT_TRUE(testing::WriteRandomTestModel(dir.path(), config, init).ok());
  absl::StatusOr<Checkpoint> model = LoadCheckpoint(dir.path());
  ASSERT_TRUE(model.ok()) << model.status();

  ForwardOptions forward_options;
  forward_options.acp = true;
  forward_options.acp_log_eps = kLogEps;
  CpuForward forward(config, model->weights, forward_options);
  const AcpEvictor evictor = AcpEvictor::ForModel(forward, kMaxModelLen, kLogEps);
  ASSERT_TRUE(evictor.enabled());
  for (int layer = 0; layer < config.num_layers; ++layer) {
    for (int head = 0; head < config.num_heads; ++head) {
      const double u = forward.StaticU(layer)[head];
      EXPECT_NEAR(evictor.delta_fix(layer, head), -2 * u - std::log(2048.0) - 10.0, 1e-9);
    }
  }

  constexpr int64_t kTokens = 320;
  constexpr int64_t kPrefill = 40;
  const int32_t num_tables = config.num_layers * config.num_heads;
  const int32_t blocks_per_table = kTokens / kBlockSize;
  std::mt19937 rng(5);
  std::vector<int32_t> tokens(kTokens);
  for (int32_t& t : tokens) t = static_cast<int32_t>(rng() % config.vocab_size);

  // Run `full` keeps every block; run `evicted` evicts after every step.
  BlockPool full_pool(num_tables * blocks_per_table, kBlockSize, config.head_dim, DType::kF32);
  BlockPool evicted_pool(num_tables * blocks_per_table, kBlockSize, config.head_dim, DType::kF32);
  SequenceBlocks full_blocks(num_tables), evicted_blocks(num_tables);
  SequenceState full_state = SequenceState::Empty(config);
  SequenceState evicted_state = SequenceState::Empty(config);
  std::vector<float> full_logits, evicted_logits;
  int64_t num_evicted = 0;
  int64_t max_used = 0;
  float max_diff = 0.0f;

  for (int64_t begin = 0; begin < kTokens;) {
    const int64_t n = begin == 0 ? kPrefill : 1;
    const absl::Span<const int32_t> chunk(tokens.data() + begin, n);
    ASSERT_TRUE(full_blocks.Reserve(full_pool, begin + n));
    ASSERT_TRUE(evicted_blocks.Reserve(evicted_pool, begin + n));
    ForwardSequence full_seq{chunk, &full_state, full_blocks.Views().data(), false};
    forward.Run({&full_seq, 1}, full_pool.view(), &full_logits);
    ForwardSequence evicted_seq{chunk, &evicted_state, evicted_blocks.Views().data(), false};
    forward.Run({&evicted_seq, 1}, evicted_pool.view(), &evicted_logits);
    max_used = std::max<int64_t>(max_used, evicted_pool.num_used());
    num_evicted += evictor.Evict(evicted_state, evicted_blocks, evicted_pool);
    begin += n;

    const std::vector<float> a = LogSoftmax(full_logits.data(), config.vocab_size);
    const std::vector<float> b = LogSoftmax(evicted_logits.data(), config.vocab_size);
    for (int i = 0; i < config.vocab_size; ++i)
      max_diff = std::max(max_diff, std::abs(a[i] - b[i]));
    ASSERT_LT(max_diff, 1e-3f) << "after " << begin << " tokens";

    const std::vector<HeadBlockTable>& full_views = full_blocks.Views();
    const std::vector<HeadBlockTable>& views = evicted_blocks.Views();
    for (int32_t t = 0; t < num_tables; ++t) {
      const int layer = t / config.num_heads, head = t % config.num_heads;
      const int64_t expected =
          ExpectedFirstLive(full_pool.view(), full_views[t], full_state.num_tokens,
                            full_state.last_l[t], evictor.delta_fix(layer, head));
      ASSERT_EQ(evicted_blocks.first_live_block(t), expected)
          << "layer " << layer << " head " << head << " after " << begin << " tokens";
      ASSERT_EQ(views[t].first_block, expected);
      ASSERT_EQ(views[t].first_block + views[t].num_blocks, (begin + kBlockSize - 1) / kBlockSize);
    }
  }

  int64_t first_live_sum = 0;
  for (int32_t t = 0; t < num_tables; ++t) {
    const int head = t % config.num_heads;
    const int64_t first = evicted_blocks.first_live_block(t);
    first_live_sum += first;
    if (head < 2) {
      EXPECT_GE(first, blocks_per_table - 6) << "forgetting table " << t << " kept too much";
    } else {
      EXPECT_EQ(first, 0) << "long-memory table " << t << " evicted";
    }
  }
  EXPECT_EQ(num_evicted, first_live_sum);
  EXPECT_EQ(evicted_blocks.num_live_blocks(), num_tables * blocks_per_table - num_evicted);
  EXPECT_EQ(evicted_blocks.num_blocks_allocated_total(), num_tables * blocks_per_table);
  EXPECT_LT(max_used, full_pool.num_used());
  std::printf("evicted %lld of %d blocks; peak in use %lld; max logprob diff %g\n",
              static_cast<long long>(num_evicted), num_tables * blocks_per_table,
              static_cast<long long>(max_used), max_diff);

  EXPECT_EQ(evicted_blocks.ReleaseAll(evicted_pool), num_tables * blocks_per_table - num_evicted);
  EXPECT_EQ(evicted_pool.num_free(), evicted_pool.num_blocks());
  full_blocks.ReleaseAll(full_pool);
  EXPECT_EQ(full_pool.num_free(), full_pool.num_blocks());
}

}  // namespace
}  // namespace fox
