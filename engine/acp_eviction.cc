#include "engine/acp_eviction.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace fox {

AcpEvictor::AcpEvictor(const std::vector<std::vector<float>>& u_static, int32_t num_heads,
                       int64_t max_model_len, double log_eps)
    : num_heads_(num_heads) {
  bool has_u = !u_static.empty();
  for (const std::vector<float>& u : u_static) has_u = has_u && !u.empty();
  if (!has_u) return;
  const double log_l_max = std::log(static_cast<double>(max_model_len));
  for (const std::vector<float>& u : u_static) {
    if (static_cast<int32_t>(u.size()) != num_heads) {
      std::fprintf(stderr, "%s:%d: U has %zu heads, expected %d\n", __FILE__, __LINE__, u.size(),
                   num_heads);
      std::abort();
    }
    for (float u_head : u) delta_fix_.push_back(-2.0 * u_head - log_l_max + log_eps);
  }
}

AcpEvictor AcpEvictor::ForModel(const CpuForward& forward, int64_t max_model_len, double log_eps) {
  const FoxConfig& config = forward.config();
  std::vector<std::vector<float>> u(config.num_layers);
  for (int layer = 0; layer < config.num_layers; ++layer) u[layer] = forward.StaticU(layer);
  return AcpEvictor(u, config.num_heads, max_model_len, log_eps);
}

int64_t AcpEvictor::Evict(const SequenceState& state, SequenceBlocks& blocks,
                          BlockPool& pool) const {
  if (!enabled() || state.num_tokens == 0) return 0;
  const PagedKv& kv = pool.view();
  const int64_t bs = kv.block_size;
  // Blocks before the newest token's block are whole; that block never goes.
  const int64_t evictable_end = (state.num_tokens - 1) / bs;
  int64_t freed = 0;
  for (int32_t t = 0; t < blocks.num_tables(); ++t) {
    const double l_now = state.last_l[t];
    const double threshold = delta_fix_[t];
    const int64_t first = blocks.first_live_block(t);
    const int64_t end = std::min(evictable_end, blocks.end_block(t));
    int64_t logical = first;
    // Keys are monotone in D, so the scan stops at the first block kept.
    for (; logical < end; ++logical) {
      const int32_t b = blocks.pool_block(t, logical);
      const double newest_l = kv.l_anchor[b] + kv.l_offset[int64_t{b} * bs + bs - 1];
      if (!(l_now - newest_l < threshold)) break;
    }
    blocks.FreeFront(pool, t, logical - first);
    freed += logical - first;
  }
  return freed;
}

}  // namespace fox
