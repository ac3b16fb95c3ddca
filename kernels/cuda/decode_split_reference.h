// Host reference of split-K decode attention: each work item's partial
// softmax state over its chunk of blocks, and the log-sum-exp merge of the
// partials of one (sequence, head). The CUDA decode and merge kernels compute
// exactly this; tests check that split + merge equals the unsplit CPU
// attention (kernels/cpu/forget_attention.h).
//
//   partial of chunk c:  m_c = max score,  s_c = sum_j exp(score_j - m_c),
//                        a_c = sum_j exp(score_j - m_c) v_j        [head_dim]
//   merge:  m = max_c m_c,  out = sum_c exp(m_c - m) a_c / sum_c exp(m_c - m) s_c
// A chunk whose keys ACP skips entirely has m_c = -inf, s_c = 0, a_c = 0.
#pragma once

#include <cstdint>

#include "kernels/paged_kv.h"

namespace fox {

struct DecodePartial {
  float max = 0.0f;
  float sum = 0.0f;
  float* acc = nullptr;  // [head_dim], caller-owned
};

// One decode query of one head at position `pos` with cumulative L `l_query`,
// over logical blocks [first_block, first_block + num_blocks) of `table`
// (all at or before the block of `pos`). With `skip`, leading keys whose decay
// L_query - L_key is below `delta` are dropped, as the CPU attention does.
// Returns the number of whole blocks skipped.
int32_t DecodePartialReference(const PagedKv& kv, const HeadBlockTable& table, int64_t pos,
                               double l_query, const float* q,  // [head_dim]
                               float delta, bool skip, int32_t first_block, int32_t num_blocks,
                               DecodePartial* partial);

// Merges `num_partials` states into out [head_dim]; zeros when all are empty.
void MergeDecodePartials(const DecodePartial* partials, int32_t num_partials, int32_t head_dim,
                         float* out);

}  // namespace fox
