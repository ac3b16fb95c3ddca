#include "kernels/cuda/decode_split_reference.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/check.h"
#include "kernels/dtype.h"

namespace fox {
namespace {

float LoadKv(const void* base, DType t, int64_t i) {
  if (t == DType::kF32) return static_cast<const float*>(base)[i];
  return Bf16ToF32(static_cast<const uint16_t*>(base)[i]);
}

}  // namespace

int32_t DecodePartialReference(const PagedKv& kv, const HeadBlockTable& table, int64_t pos,
                               double l_query, const float* q, float delta, bool skip,
                               int32_t first_block, int32_t num_blocks, DecodePartial* partial) {
  FOX_CHECK(kv.kv_dtype == DType::kF32 || kv.kv_dtype == DType::kBF16, "f32 or bf16 KV");
  const int64_t d = kv.head_dim;
  const int64_t bs = kv.block_size;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  std::vector<float> scores(bs);
  partial->max = -std::numeric_limits<float>::infinity();
  partial->sum = 0.0f;
  std::fill(partial->acc, partial->acc + d, 0.0f);
  int32_t skipped = 0;
  bool pruning = skip;  // D rises with the key position: only a prefix is dropped
  for (int64_t logical = first_block; logical < first_block + num_blocks; ++logical) {
    FOX_CHECK(logical >= table.first_block && logical * bs <= pos, "block is live and causal");
    const int32_t block = table.blocks[logical - table.first_block];
    const int64_t n = std::min(bs, pos - logical * bs + 1);
    const float base = static_cast<float>(l_query - kv.l_anchor[block]);
    const float* offsets = kv.l_offset + int64_t{block} * bs;
    int64_t first = 0;
    if (pruning) {
      if (base - offsets[n - 1] < delta) {
        ++skipped;
        continue;
      }
      while (base - offsets[first] < delta) ++first;
      pruning = false;
    }
    const int64_t elem0 = int64_t{block} * kv.BlockElems();
    float block_max = -std::numeric_limits<float>::infinity();
    for (int64_t j = first; j < n; ++j) {
      float dot = 0.0f;
      for (int64_t c = 0; c < d; ++c) dot += q[c] * LoadKv(kv.k, kv.kv_dtype, elem0 + j * d + c);
      scores[j] = dot * scale + (base - offsets[j]);
      block_max = std::max(block_max, scores[j]);
    }
    if (block_max > partial->max) {
      const float correction = std::exp(partial->max - block_max);
      partial->sum *= correction;
      for (int64_t c = 0; c < d; ++c) partial->acc[c] *= correction;
      partial->max = block_max;
    }
    for (int64_t j = first; j < n; ++j) {
      const float w = std::exp(scores[j] - partial->max);
      partial->sum += w;
      for (int64_t c = 0; c < d; ++c) {
        partial->acc[c] += w * LoadKv(kv.v, kv.kv_dtype, elem0 + j * d + c);
      }
    }
  }
  return skipped;
}

void MergeDecodePartials(const DecodePartial* partials, int32_t num_partials, int32_t head_dim,
                         float* out) {
  float m = -std::numeric_limits<float>::infinity();
  for (int32_t p = 0; p < num_partials; ++p) m = std::max(m, partials[p].max);
  std::fill(out, out + head_dim, 0.0f);
  if (m == -std::numeric_limits<float>::infinity()) return;
  float sum = 0.0f;
  for (int32_t p = 0; p < num_partials; ++p) {
    if (partials[p].sum == 0.0f) continue;
    const float w = std::exp(partials[p].max - m);
    sum += w * partials[p].sum;
    for (int32_t c = 0; c < head_dim; ++c) out[c] += w * partials[p].acc[c];
  }
  const float inv = 1.0f / sum;
  for (int32_t c = 0; c < head_dim; ++c) out[c] *= inv;
}

}  // namespace fox
