// What one sequence carries from call to call beside its KV blocks
// (FOX_MODEL.md section 4): the raw k~, v~ of its last token for the
// KV-shift, the cumulative L per head, and for models without QK-norm the
// largest key norm per head (ACP's data-dependent bound).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "models/config.h"

namespace fox {

struct SequenceState {
  int64_t num_tokens = 0;           // tokens already in the cache
  std::vector<float> shift_k;       // [layers, H] raw k~ of the last token
  std::vector<float> shift_v;       // [layers, H] raw v~ of the last token
  std::vector<double> last_l;       // [layers, nH] L of the last token
  std::vector<float> key_norm_max;  // [layers, nH] largest ||k|| cached so far

  // A state for an empty sequence: zero shift, L = 0.
  static SequenceState Empty(const FoxConfig& config);
  // Back to Empty's values, keeping the sizes (a sequence recomputed from scratch).
  void Reset();
};

inline void SequenceState::Reset() {
  num_tokens = 0;
  std::fill(shift_k.begin(), shift_k.end(), 0.0f);
  std::fill(shift_v.begin(), shift_v.end(), 0.0f);
  std::fill(last_l.begin(), last_l.end(), 0.0);
  std::fill(key_norm_max.begin(), key_norm_max.end(), 0.0f);
}

inline SequenceState SequenceState::Empty(const FoxConfig& config) {
  SequenceState s;
  const size_t lh = static_cast<size_t>(config.num_layers) * config.hidden_size;
  const size_t ln = static_cast<size_t>(config.num_layers) * config.num_heads;
  s.shift_k.assign(lh, 0.0f);
  s.shift_v.assign(lh, 0.0f);
  s.last_l.assign(ln, 0.0);
  s.key_norm_max.assign(ln, 0.0f);
  return s;
}

}  // namespace fox
