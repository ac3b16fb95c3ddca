// Tests of the host decode plan (split-K work items and their merge map) and
// of the split + log-sum-exp merge reference against the unsplit CPU
// attention: the math the CUDA decode and merge kernels implement.
#include "kernels/cuda/decode_plan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/cpu/forget_attention.h"
#include "kernels/cuda/decode_split_reference.h"
#include "kernels/dtype.h"
#include "kernels/paged_kv.h"

namespace fox {
namespace {

// Checks the invariants every plan must hold; returns the covered-block count.
int64_t CheckPlan(const std::vector<DecodeRange>& ranges, int32_t num_seqs, int32_t num_heads,
                  const DecodePlan& plan) {
  const int32_t num_ranges = num_seqs * num_heads;
  EXPECT_EQ(plan.merge_indptr.size(), static_cast<size_t>(num_ranges + 1));
  EXPECT_EQ(plan.merge_indptr.front(), 0);
  EXPECT_EQ(plan.merge_indptr.back(), plan.num_items());
  int64_t covered = 0;
  for (int32_t r = 0; r < num_ranges; ++r) {
    // The items of range r are contiguous, belong to r, and tile its blocks in order.
    int32_t next = ranges[r].first_block;
    for (int32_t i = plan.merge_indptr[r]; i < plan.merge_indptr[r + 1]; ++i) {
      EXPECT_EQ(plan.item_seq[i], r / num_heads);
      EXPECT_EQ(plan.item_head[i], r % num_heads);
      EXPECT_EQ(plan.item_first_block[i], next);
      EXPECT_GE(plan.item_num_blocks[i], 1);
      EXPECT_LE(plan.item_num_blocks[i], plan.max_blocks_per_item);
      next += plan.item_num_blocks[i];
      covered += plan.item_num_blocks[i];
    }
    EXPECT_EQ(next, ranges[r].first_block + ranges[r].num_blocks) << "range " << r;
  }
  return covered;
}

TEST(DecodePlanTest, CoversEveryBlockOnceAndBalancesSkewedRanges) {
  std::mt19937 rng(11);
  const int32_t num_seqs = 24, num_heads = 24;
  std::vector<DecodeRange> ranges(num_seqs * num_heads);
  std::bernoulli_distribution is_long(0.3);
  std::uniform_int_distribution<int32_t> short_len(1, 8), long_len(200, 2000), first(0, 500);
  int64_t total = 0;
  int32_t longest = 0;
  for (DecodeRange& r : ranges) {
    r.first_block = first(rng);
    r.num_blocks = is_long(rng) ? long_len(rng) : short_len(rng);
    total += r.num_blocks;
    longest = std::max(longest, r.num_blocks);
  }
  DecodePlanOptions options;
  options.target_items = 132 * 4;
  options.min_blocks_per_item = 4;
  DecodePlan plan = PlanDecode(ranges.data(), num_seqs, num_heads, options);
  EXPECT_EQ(CheckPlan(ranges, num_seqs, num_heads, plan), total);

  // Stated bound: no item exceeds ceil(total / target) (the min is smaller
  // here), and at most target + ranges items exist.
  const int64_t even = (total + options.target_items - 1) / options.target_items;
  ASSERT_GT(even, options.min_blocks_per_item);
  EXPECT_EQ(plan.max_blocks_per_item, even);
  const int32_t item_max =
      *std::max_element(plan.item_num_blocks.begin(), plan.item_num_blocks.end());
  EXPECT_LE(item_max, even);
  EXPECT_LE(plan.num_items(), options.target_items + num_seqs * num_heads);
  // Items dealt to target_items CTAs, each to the least loaded (what the
  // hardware scheduler approximates): the busiest CTA is within 2x of the
  // ideal total / target. Unsplit, one CTA would walk the longest range,
  // over 5x the ideal on this mix.
  std::vector<int64_t> load(options.target_items, 0);
  for (int32_t i = 0; i < plan.num_items(); ++i) {
    *std::min_element(load.begin(), load.end()) += plan.item_num_blocks[i];
  }
  EXPECT_LE(*std::max_element(load.begin(), load.end()), 2 * even);
  EXPECT_GT(longest, 5 * even);
  // Items of one split range differ by at most one block.
  for (int32_t r = 0; r < num_seqs * num_heads; ++r) {
    int32_t lo = INT32_MAX, hi = 0;
    for (int32_t i = plan.merge_indptr[r]; i < plan.merge_indptr[r + 1]; ++i) {
      lo = std::min(lo, plan.item_num_blocks[i]);
      hi = std::max(hi, plan.item_num_blocks[i]);
    }
    if (plan.merge_indptr[r + 1] > plan.merge_indptr[r]) {
      EXPECT_LE(hi - lo, 1);
    }
  }
}

TEST(DecodePlanTest, SmallBatchesDoNotSplitBelowTheMinimum) {
  std::vector<DecodeRange> ranges = {{0, 3}, {5, 10}, {0, 1}, {2, 9}};
  DecodePlanOptions options;
  options.target_items = 1000;
  options.min_blocks_per_item = 4;
  DecodePlan plan = PlanDecode(ranges.data(), 2, 2, options);
  EXPECT_EQ(CheckPlan(ranges, 2, 2, plan), 23);
  EXPECT_EQ(plan.max_blocks_per_item, 4);
  EXPECT_EQ(plan.merge_indptr, (std::vector<int32_t>{0, 1, 4, 5, 8}));
  EXPECT_EQ(plan.item_num_blocks, (std::vector<int32_t>{3, 4, 3, 3, 1, 3, 3, 3}));
  EXPECT_EQ(plan.item_first_block, (std::vector<int32_t>{0, 5, 9, 12, 0, 2, 5, 8}));
}

TEST(DecodePlanTest, EmptyRangesGetNoItemsAndAnEmptyMerge) {
  std::vector<DecodeRange> ranges = {{4, 0}, {0, 7}, {9, 0}};
  DecodePlanOptions options;
  options.target_items = 2;
  options.min_blocks_per_item = 1;
  DecodePlan plan = PlanDecode(ranges.data(), 3, 1, options);
  EXPECT_EQ(CheckPlan(ranges, 3, 1, plan), 7);
  EXPECT_EQ(plan.merge_indptr, (std::vector<int32_t>{0, 0, 2, 2}));

  std::vector<DecodeRange> none = {{0, 0}, {3, 0}};
  DecodePlan empty = PlanDecode(none.data(), 1, 2, options);
  EXPECT_EQ(empty.num_items(), 0);
  EXPECT_EQ(empty.merge_indptr, (std::vector<int32_t>{0, 0, 0}));
  DecodePartial nothing;
  std::vector<float> out(4, 7.0f);
  MergeDecodePartials(&nothing, 0, 4, out.data());
  EXPECT_EQ(out, std::vector<float>(4, 0.0f));
}

// A decode batch over a paged pool with shuffled block ids: each (sequence,
// head) has its own length, evicted prefix and forget rate.
class DecodeProblem {
 public:
  DecodeProblem(int32_t num_seqs, int32_t num_heads, int32_t head_dim, int32_t block_size,
                DType kv_dtype, uint64_t seed)
      : num_seqs_(num_seqs), num_heads_(num_heads), d_(head_dim) {
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<int64_t> len(1, 700);
    std::uniform_real_distribution<double> rate(0.01, 0.4);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    pos_.resize(num_seqs);
    for (int64_t& p : pos_) p = len(rng);
    int32_t num_blocks = 0;
    for (int32_t s = 0; s < num_seqs; ++s) {
      num_blocks += num_heads * static_cast<int32_t>(pos_[s] / block_size + 1);
    }
    kv_.block_size = block_size;
    kv_.head_dim = head_dim;
    kv_.kv_dtype = kv_dtype;
    kv_.num_blocks = num_blocks;
    k_.resize(num_blocks * kv_.BlockElems() * DTypeSize(kv_dtype));
    v_.resize(k_.size());
    anchor_.resize(num_blocks);
    offset_.resize(int64_t{num_blocks} * block_size);
    kv_.k = k_.data();
    kv_.v = v_.data();
    kv_.l_anchor = anchor_.data();
    kv_.l_offset = offset_.data();
    std::vector<int32_t> ids(num_blocks);
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), rng);

    ids_.resize(num_seqs * num_heads);
    tables_.resize(num_seqs * num_heads);
    query_l_.resize(num_seqs * num_heads);
    q_.resize(int64_t{num_seqs} * num_heads * head_dim);
    for (float& x : q_) x = normal(rng);
    int32_t next_id = 0;
    std::vector<float> k(head_dim), v(head_dim);
    for (int32_t s = 0; s < num_seqs; ++s) {
      const int32_t last_block = static_cast<int32_t>(pos_[s] / block_size);
      for (int32_t h = 0; h < num_heads; ++h) {
        const int32_t r = s * num_heads + h;
        // Some heads lost a prefix to eviction.
        const int32_t first = std::uniform_int_distribution<int32_t>(0, last_block / 2)(rng);
        for (int32_t b = first; b <= last_block; ++b) ids_[r].push_back(ids[next_id++]);
        tables_[r] = {ids_[r].data(), first, last_block - first + 1};
        // L starts far below zero, where float alone would lose the decay.
        double l = -5000.0 * std::uniform_real_distribution<double>(0, 1)(rng);
        const double f = rate(rng);
        for (int64_t p = 0; p <= pos_[s]; ++p) {
          l -= f * std::uniform_real_distribution<double>(0.5, 1.5)(rng);
          if (p / block_size < first) continue;
          for (float& x : k) x = normal(rng) * 0.5f;
          for (float& x : v) x = normal(rng);
          WriteKvToken(kv_, tables_[r], p, k.data(), v.data(), l);
        }
        query_l_[r] = l;
      }
    }
  }

  // The unsplit CPU attention: out [num_seqs, num_heads, d].
  std::vector<float> CpuAttention(const cpu::AcpOptions& acp,
                                  cpu::AttentionCounters* counters) const {
    std::vector<cpu::AttentionQueries> seqs(num_seqs_);
    for (int32_t s = 0; s < num_seqs_; ++s) {
      seqs[s].row0 = s;
      seqs[s].num_queries = 1;
      seqs[s].pos0 = pos_[s];
      seqs[s].tables = &tables_[s * num_heads_];
      seqs[s].query_l = &query_l_[s * num_heads_];
    }
    std::vector<float> out(q_.size(), 0.0f);
    cpu::ForgetAttention(kv_, seqs.data(), num_seqs_, num_heads_, q_.data(), acp, out.data(),
                         counters);
    return out;
  }

  // Plans the batch, computes each item's partial, merges per (seq, head).
  std::vector<float> SplitAndMerge(const cpu::AcpOptions& acp, const DecodePlanOptions& options,
                                   int32_t* num_items) const {
    std::vector<DecodeRange> ranges(tables_.size());
    for (size_t r = 0; r < tables_.size(); ++r) {
      ranges[r] = {tables_[r].first_block, tables_[r].num_blocks};
    }
    DecodePlan plan = PlanDecode(ranges.data(), num_seqs_, num_heads_, options);
    *num_items = plan.num_items();
    std::vector<float> acc(int64_t{plan.num_items()} * d_);
    std::vector<DecodePartial> partials(plan.num_items());
    for (int32_t i = 0; i < plan.num_items(); ++i) {
      const int32_t s = plan.item_seq[i], h = plan.item_head[i], r = s * num_heads_ + h;
      const float* q = &q_[int64_t{r} * d_];
      float delta = 0.0f;
      if (acp.enabled) {
        delta = -2.0f * acp.u_static[h] -
                static_cast<float>(std::log(static_cast<double>(pos_[s] + 1))) + acp.log_eps;
      }
      partials[i].acc = &acc[int64_t{i} * d_];
      DecodePartialReference(kv_, tables_[r], pos_[s], query_l_[r], q, delta, acp.enabled,
                             plan.item_first_block[i], plan.item_num_blocks[i], &partials[i]);
    }
    std::vector<float> out(q_.size(), 0.0f);
    for (int32_t r = 0; r < num_seqs_ * num_heads_; ++r) {
      MergeDecodePartials(&partials[plan.merge_indptr[r]],
                          plan.merge_indptr[r + 1] - plan.merge_indptr[r], d_,
                          &out[int64_t{r} * d_]);
    }
    return out;
  }

 private:
  int32_t num_seqs_, num_heads_, d_;
  PagedKv kv_;
  std::vector<uint8_t> k_, v_;
  std::vector<double> anchor_;
  std::vector<float> offset_;
  std::vector<int64_t> pos_;
  std::vector<std::vector<int32_t>> ids_;
  std::vector<HeadBlockTable> tables_;
  std::vector<double> query_l_;
  std::vector<float> q_;
};

void ExpectSplitEqualsUnsplit(DType kv_dtype, bool acp_on) {
  const int32_t num_heads = 4;
  DecodeProblem problem(6, num_heads, 64, 16, kv_dtype, acp_on ? 5 : 3);
  std::vector<float> u(num_heads, 1.0f);
  cpu::AcpOptions acp;
  acp.enabled = acp_on;
  acp.u_static = u.data();
  cpu::AttentionCounters counters;
  const std::vector<float> want = problem.CpuAttention(acp, &counters);
  if (acp_on) {
    EXPECT_GT(counters.key_blocks_skipped, 0);  // the skip path is exercised
  }
  DecodePlanOptions options;
  options.target_items = 40;
  options.min_blocks_per_item = 1;
  int32_t num_items = 0;
  const std::vector<float> got = problem.SplitAndMerge(acp, options, &num_items);
  EXPECT_GT(num_items, 6 * num_heads);  // ranges were split
  double worst = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_TRUE(std::isfinite(got[i]));
    worst = std::max(worst, static_cast<double>(std::abs(got[i] - want[i])));
  }
  EXPECT_LT(worst, 1e-5);
  EXPECT_GT(*std::max_element(want.begin(), want.end()), 0.1f);  // not a zero output
}

TEST(DecodeSplitReferenceTest, SplitAndMergeEqualsUnsplitF32) {
  ExpectSplitEqualsUnsplit(DType::kF32, false);
}
TEST(DecodeSplitReferenceTest, SplitAndMergeEqualsUnsplitF32WithAcpSkipping) {
  ExpectSplitEqualsUnsplit(DType::kF32, true);
}
TEST(DecodeSplitReferenceTest, SplitAndMergeEqualsUnsplitBf16WithAcpSkipping) {
  ExpectSplitEqualsUnsplit(DType::kBF16, true);
}

}  // namespace
}  // namespace fox
