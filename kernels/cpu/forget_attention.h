// Forgetting attention over the per-head paged KV cache (CPU):
//   logit(i, j) = q_i . k_j / sqrt(d) + (L_i - L_j),   j <= i,  softmax over j.
// Each query walks only its head's live blocks. With ACP on, it also skips the
// leading keys whose decay D = L_i - L_j is below the step's threshold
//   delta = -2U - log(i + 1) + log_eps        (FOX_MODEL.md section 5),
// which drops less than eps of the query's softmax mass.
#pragma once

#include <cstdint>

#include "kernels/paged_kv.h"

namespace fox::cpu {

// The queries of one sequence in one layer: rows row0 .. row0 + num_queries of
// q and out, at positions pos0 .. pos0 + num_queries - 1. The cache already
// holds every key up to the last query's position.
struct AttentionQueries {
  int64_t row0 = 0;
  int32_t num_queries = 0;
  int64_t pos0 = 0;
  const HeadBlockTable* tables = nullptr;  // [num_heads]
  const double* query_l = nullptr;         // [num_queries, num_heads]: L of each query
  // Only when U depends on the data (no QK-norm): the largest L2 norm of any
  // key this sequence holds in the head, up to and including each query's own.
  const float* key_norm_max = nullptr;     // [num_queries, num_heads]
};

struct AcpOptions {
  bool enabled = false;
  float log_eps = -10.0f;
  // Per-head U when it is a constant of the layer (QK-norm); nullptr means
  // U = ||q_i|| * key_norm_max / sqrt(d), from the data.
  const float* u_static = nullptr;  // [num_heads]
};

struct AttentionCounters {
  int64_t key_blocks_read = 0;     // (query, block) pairs computed
  int64_t key_blocks_skipped = 0;  // (query, block) pairs skipped whole by ACP
};

// q, out: [rows, num_heads, head_dim] float32.
void ForgetAttention(const PagedKv& kv, const AttentionQueries* seqs, int32_t num_seqs,
                     int32_t num_heads, const float* q, const AcpOptions& acp, float* out,
                     AttentionCounters* counters);

}  // namespace fox::cpu
