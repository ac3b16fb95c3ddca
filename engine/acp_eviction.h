// ACP eviction (FOX_MODEL.md section 5, use 2): after each step, every
// (sequence, layer, head) table frees the whole blocks at its front whose
// newest key has decayed below the fixed threshold
//
//   delta_fix[layer][head] = -2 U[layer][head] - log(L_max) + log_eps,
//
// i.e. L_now - L_newest_key < delta_fix. L never increases, so such a key
// stays prunable for every later query of the sequence and its K/V can go
// back to the pool for good. Needs the static U of QK-norm models; for models
// without QK-norm the evictor is disabled and never frees anything.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/block_pool.h"
#include "engine/sequence_blocks.h"
#include "models/forward.h"
#include "models/sequence_state.h"

namespace fox {

class AcpEvictor {
 public:
  // `u_static[layer]` holds ACP's U per head ([num_heads]), or is empty for
  // every layer when the model has no QK-norm. `max_model_len` is the longest
  // context the server admits (L_max); `log_eps` is --acp-log-eps.
  AcpEvictor(const std::vector<std::vector<float>>& u_static, int32_t num_heads,
             int64_t max_model_len, double log_eps);
  // The thresholds of the model `forward` runs.
  static AcpEvictor ForModel(const CpuForward& forward, int64_t max_model_len, double log_eps);

  bool enabled() const { return !delta_fix_.empty(); }
  double delta_fix(int32_t layer, int32_t head) const {
    return delta_fix_[static_cast<size_t>(layer) * num_heads_ + head];
  }

  // After a step of the sequence whose cache state is `state`: frees, per
  // table, the leading whole blocks whose newest key is below delta_fix. The
  // block holding the newest token and partial blocks are never freed.
  // Tables are (layer, head) row-major, as in `state.last_l`. Returns the
  // number of blocks freed (0 when disabled).
  int64_t Evict(const SequenceState& state, SequenceBlocks& blocks, BlockPool& pool) const;

 private:
  int32_t num_heads_ = 0;
  std::vector<double> delta_fix_;  // [layers, nH]; empty: eviction off
};

}  // namespace fox
