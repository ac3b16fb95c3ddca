// Tests of the paged KV layout: tokens land in the pool block the table names,
// at the slot their position gives, and come back as written; L keeps ~1e-6
// absolute precision in differences however large it has grown.
#include "kernels/paged_kv.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/dtype.h"

namespace fox {
namespace {

// A pool whose storage is poisoned, so that any slot that was not written (or
// written in the wrong place) is visible.
struct Pool {
  PagedKv kv;
  std::vector<uint8_t> k, v;
  std::vector<double> anchor;
  std::vector<float> offset;

  Pool(int32_t num_blocks, int32_t block_size, int32_t head_dim, DType dtype) {
    kv.num_blocks = num_blocks;
    kv.block_size = block_size;
    kv.head_dim = head_dim;
    kv.kv_dtype = dtype;
    k.assign(num_blocks * kv.BlockElems() * DTypeSize(dtype), 0xff);
    v.assign(k.size(), 0xff);
    anchor.assign(num_blocks, std::nan(""));
    offset.assign(int64_t{num_blocks} * block_size, std::nanf(""));
    kv.k = k.data();
    kv.v = v.data();
    kv.l_anchor = anchor.data();
    kv.l_offset = offset.data();
  }
};

float RoundTo(DType dtype, float x) {
  if (dtype == DType::kBF16) return Bf16ToF32(F32ToBf16(x));
  if (dtype == DType::kF16) return F16ToF32(F32ToF16(x));
  return x;
}

// Two sequences share one pool through shuffled block ids; both have freed
// their leading blocks (first_block > 0). Every token written is read back
// exactly (after rounding to the KV type), the pool holds it at
// [table block][pos % block_size], and blocks no table names stay untouched.
TEST(PagedKvTest, WriteReadRoundTripThroughShuffledTables) {
  const int32_t num_blocks = 23, block_size = 16, head_dim = 72;
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    Pool pool(num_blocks, block_size, head_dim, dtype);
    std::vector<int32_t> ids(num_blocks);
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), std::mt19937(3));
    // Sequence 0: logical blocks 3..9 (positions 48..159); sequence 1: 1..8
    // (positions 16..140). Pool blocks ids[15..22] are never used.
    const HeadBlockTable tables[2] = {{ids.data(), 3, 7}, {ids.data() + 7, 1, 8}};
    const int64_t first_pos[2] = {48, 16}, end_pos[2] = {160, 141};

    std::mt19937_64 rng(17);
    std::normal_distribution<float> normal(0.0f, 1.5f);
    std::uniform_real_distribution<double> log_f(-1.0, 0.0);
    std::vector<std::vector<float>> ks(2), vs(2);
    std::vector<std::vector<double>> ls(2);
    for (int s = 0; s < 2; ++s) {
      double l = -1000.0 * (s + 1);
      for (int64_t pos = first_pos[s]; pos < end_pos[s]; ++pos) {
        std::vector<float> k(head_dim), v(head_dim);
        for (float& x : k) x = normal(rng);
        for (float& x : v) x = normal(rng);
        l += log_f(rng);
        WriteKvToken(pool.kv, tables[s], pos, k.data(), v.data(), l);
        ks[s].insert(ks[s].end(), k.begin(), k.end());
        vs[s].insert(vs[s].end(), v.begin(), v.end());
        ls[s].push_back(l);
      }
    }
    std::vector<bool> block_used(num_blocks, false);
    for (int s = 0; s < 2; ++s) {
      for (int64_t pos = first_pos[s]; pos < end_pos[s]; ++pos) {
        const int64_t t = pos - first_pos[s];
        std::vector<float> k(head_dim), v(head_dim);
        double l = 0.0;
        ReadKvToken(pool.kv, tables[s], pos, k.data(), v.data(), &l);
        const int32_t block = tables[s].blocks[pos / block_size - tables[s].first_block];
        const int64_t slot = pos % block_size;
        block_used[block] = true;
        std::vector<float> k_pool(head_dim), v_pool(head_dim);
        const int64_t byte = (block * pool.kv.BlockElems() + slot * head_dim) * DTypeSize(dtype);
        ConvertToF32(pool.k.data() + byte, dtype, head_dim, k_pool.data());
        ConvertToF32(pool.v.data() + byte, dtype, head_dim, v_pool.data());
        for (int c = 0; c < head_dim; ++c) {
          const float k_want = RoundTo(dtype, ks[s][t * head_dim + c]);
          const float v_want = RoundTo(dtype, vs[s][t * head_dim + c]);
          ASSERT_EQ(k[c], k_want) << DTypeName(dtype) << " seq " << s << " pos " << pos;
          ASSERT_EQ(v[c], v_want) << DTypeName(dtype) << " seq " << s << " pos " << pos;
          ASSERT_EQ(k_pool[c], k_want) << "pool block " << block << " slot " << slot;
          ASSERT_EQ(v_pool[c], v_want) << "pool block " << block << " slot " << slot;
        }
        ASSERT_NEAR(l, ls[s][t], 1e-6) << "seq " << s << " pos " << pos;
        // The anchor is the L of the block's first token, exactly.
        if (slot == 0) {
          ASSERT_EQ(pool.anchor[block], ls[s][t]);
        }
      }
    }
    // Unused blocks keep their poison.
    int unused = 0;
    for (int32_t b = 0; b < num_blocks; ++b) {
      if (block_used[b]) continue;
      ++unused;
      const int64_t bytes = pool.kv.BlockElems() * DTypeSize(dtype);
      for (int64_t i = 0; i < bytes; ++i) {
        ASSERT_EQ(pool.k[b * bytes + i], 0xff) << "block " << b;
        ASSERT_EQ(pool.v[b * bytes + i], 0xff) << "block " << b;
      }
      ASSERT_TRUE(std::isnan(pool.anchor[b])) << "block " << b;
    }
    EXPECT_EQ(unused, num_blocks - 15);
  }
}

// L grows without bound (here to about -1e5 after 200k tokens, where a float32
// ulp is 0.0078), but differences L_i - L_j recovered from the double anchors
// and float offsets stay within 1e-6 whenever |L_i - L_j| < 50, within a block
// and across blocks. The float offsets are bounded by block_size * max|log f|
// (< 16 in both cases here), which keeps each read within 2^-21 of the truth.
TEST(PagedKvTest, LDifferencesKeepPrecisionAtAnyLength) {
  struct Case {
    int32_t block_size;
    double min_log_f;  // log f uniform in [min_log_f, 0]
  };
  for (const Case c : {Case{16, -1.0}, Case{64, -0.25}}) {
    const int64_t num_tokens = 200000;
    const int32_t num_live = 24;  // only the last blocks are stored
    const int32_t num_logical = static_cast<int32_t>(num_tokens / c.block_size);
    ASSERT_EQ(int64_t{num_logical} * c.block_size, num_tokens);
    Pool pool(num_live + 5, c.block_size, 8, DType::kF32);
    std::vector<int32_t> ids(num_live + 5);
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), std::mt19937(5));
    const HeadBlockTable table{ids.data(), num_logical - num_live, num_live};
    const int64_t first_pos = int64_t{table.first_block} * c.block_size;

    std::mt19937_64 rng(23);
    std::uniform_real_distribution<double> log_f(c.min_log_f, 0.0);
    std::vector<double> l_true;  // L of positions first_pos .. num_tokens - 1
    double l = 0.0;
    const std::vector<float> kv_row(8, 0.5f);
    for (int64_t pos = 0; pos < num_tokens; ++pos) {
      l += log_f(rng);
      if (pos < first_pos) continue;
      l_true.push_back(l);
      WriteKvToken(pool.kv, table, pos, kv_row.data(), kv_row.data(), l);
    }
    ASSERT_LT(l_true.back(), c.min_log_f * num_tokens * 0.49);  // really large
    std::vector<double> l_read(l_true.size());
    std::vector<float> scratch(8);
    for (size_t t = 0; t < l_true.size(); ++t) {
      ReadKvToken(pool.kv, table, first_pos + static_cast<int64_t>(t), scratch.data(),
                  scratch.data(), &l_read[t]);
    }

    double worst_within = 0.0, worst_across = 0.0, worst_f32 = 0.0;
    int64_t pairs_within = 0, pairs_across = 0;
    for (size_t i = 0; i < l_true.size(); ++i) {
      for (size_t j = 0; j <= i; ++j) {
        const double want = l_true[i] - l_true[j];
        if (std::fabs(want) >= 50.0) continue;
        const double err = std::fabs((l_read[i] - l_read[j]) - want);
        const bool same_block = i / c.block_size == j / c.block_size;
        (same_block ? worst_within : worst_across) =
            std::max(same_block ? worst_within : worst_across, err);
        ++(same_block ? pairs_within : pairs_across);
        // What plain float32 storage of L would give for the same pair.
        const double f32_diff =
            double{static_cast<float>(l_true[i])} - static_cast<float>(l_true[j]);
        worst_f32 = std::max(worst_f32, std::fabs(f32_diff - want));
      }
    }
    EXPECT_GT(pairs_within, 1000);
    EXPECT_GT(pairs_across, 1000);
    EXPECT_LT(worst_within, 1e-6) << "block size " << c.block_size;
    EXPECT_LT(worst_across, 1e-6) << "block size " << c.block_size;
    // Float32 L fails the same bound by orders of magnitude.
    EXPECT_GT(worst_f32, 1e-3) << "block size " << c.block_size;
  }
}

}  // namespace
}  // namespace fox
