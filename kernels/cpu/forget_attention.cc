#include "kernels/cpu/forget_attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/vec.h"

namespace fox::cpu {
namespace {

constexpr int kMaxBlockSize = 256;

float Dot(const float* q, const void* k_base, DType kv_dtype, int64_t elem, int64_t d) {
  if (kv_dtype == DType::kF32) return DotF32(q, static_cast<const float*>(k_base) + elem, d);
  return DotBf16(q, static_cast<const uint16_t*>(k_base) + elem, d);
}

void AddWeightedValue(float* acc, float w, const void* v_base, DType kv_dtype, int64_t elem,
                      int64_t d) {
  if (kv_dtype == DType::kF32) {
    Axpy(acc, w, static_cast<const float*>(v_base) + elem, d);
  } else {
    Axpy(acc, w, static_cast<const uint16_t*>(v_base) + elem, d);
  }
}

// One query of one head: online softmax over its live keys, block by block.
void AttendOneQuery(const PagedKv& kv, const HeadBlockTable& table, int64_t pos, double l_query,
                    const float* q, float delta, bool skip, float* out, int64_t* blocks_read,
                    int64_t* blocks_skipped) {
  const int64_t d = kv.head_dim;
  const int64_t bs = kv.block_size;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const int64_t last_block = pos / bs;
  float scores[kMaxBlockSize];

  float running_max = -std::numeric_limits<float>::infinity();
  float denom = 0.0f;
  std::fill(out, out + d, 0.0f);
  bool pruning = skip;  // keys are monotone in D: once one is kept, all later are
  for (int64_t logical = table.first_block; logical <= last_block; ++logical) {
    const int32_t block = table.blocks[logical - table.first_block];
    const int64_t n = std::min(bs, pos - logical * bs + 1);
    const float base = static_cast<float>(l_query - kv.l_anchor[block]);
    const float* offsets = kv.l_offset + int64_t{block} * bs;
    int64_t first = 0;
    if (pruning) {
      if (base - offsets[n - 1] < delta) {  // the block's newest key is prunable
        ++*blocks_skipped;
        continue;
      }
      while (base - offsets[first] < delta) ++first;
      pruning = false;
    }
    ++*blocks_read;
    const int64_t elem0 = int64_t{block} * kv.BlockElems();
    float block_max = -std::numeric_limits<float>::infinity();
    for (int64_t j = first; j < n; ++j) {
      scores[j] = Dot(q, kv.k, kv.kv_dtype, elem0 + j * d, d) * scale + (base - offsets[j]);
      block_max = std::max(block_max, scores[j]);
    }
    if (block_max > running_max) {
      const float correction = std::exp(running_max - block_max);
      denom *= correction;
      for (int64_t c = 0; c < d; ++c) out[c] *= correction;
      running_max = block_max;
    }
    for (int64_t j = first; j < n; ++j) {
      const float w = std::exp(scores[j] - running_max);
      denom += w;
      AddWeightedValue(out, w, kv.v, kv.kv_dtype, elem0 + j * d, d);
    }
  }
  const float inv = 1.0f / denom;  // the query always sees itself, so denom > 0
  for (int64_t c = 0; c < d; ++c) out[c] *= inv;
}

}  // namespace

void ForgetAttention(const PagedKv& kv, const AttentionQueries* seqs, int32_t num_seqs,
                     int32_t num_heads, const float* q, const AcpOptions& acp, float* out,
                     AttentionCounters* counters) {
  // Flatten (sequence, query, head) into one parallel index space.
  std::vector<int64_t> item_begin(num_seqs + 1, 0);
  for (int32_t s = 0; s < num_seqs; ++s) {
    item_begin[s + 1] = item_begin[s] + int64_t{seqs[s].num_queries} * num_heads;
  }
  const int64_t num_items = item_begin[num_seqs];
  const int64_t d = kv.head_dim;
  const float inv_sqrt_d = 1.0f / std::sqrt(static_cast<float>(d));
  int64_t blocks_read = 0, blocks_skipped = 0;

#pragma omp parallel for schedule(dynamic, 4) reduction(+ : blocks_read, blocks_skipped)
  for (int64_t item = 0; item < num_items; ++item) {
    const int32_t s = static_cast<int32_t>(
        std::upper_bound(item_begin.begin(), item_begin.end(), item) - item_begin.begin() - 1);
    const AttentionQueries& seq = seqs[s];
    const int64_t local = item - item_begin[s];
    const int64_t qi = local / num_heads;
    const int32_t h = static_cast<int32_t>(local % num_heads);
    const int64_t row = seq.row0 + qi;
    const int64_t pos = seq.pos0 + qi;
    const float* q_row = q + (row * num_heads + h) * d;

    float delta = 0.0f;
    if (acp.enabled) {
      float u;
      if (acp.u_static != nullptr) {
        u = acp.u_static[h];
      } else {
        const float q_norm = std::sqrt(DotF32(q_row, q_row, d));
        u = q_norm * seq.key_norm_max[qi * num_heads + h] * inv_sqrt_d;
      }
      delta = -2.0f * u - static_cast<float>(std::log(static_cast<double>(pos + 1))) + acp.log_eps;
    }
    AttendOneQuery(kv, seq.tables[h], pos, seq.query_l[qi * num_heads + h], q_row, delta,
                   acp.enabled, out + (row * num_heads + h) * d, &blocks_read, &blocks_skipped);
  }
  if (counters != nullptr) {
    counters->key_blocks_read += blocks_read;
    counters->key_blocks_skipped += blocks_skipped;
  }
}

}  // namespace fox::cpu
