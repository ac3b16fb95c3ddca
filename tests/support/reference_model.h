// A slow FoX forward pass in double precision, written plainly from the math
// of FOX_MODEL.md section 1: whole sequence at once, no cache, no pruning.
// The yardstick every faster path is tested against.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "models/config.h"
#include "models/weights.h"

namespace fox::testing {

struct ReferenceOptions {
  // Accumulates L = sum of log f as a float32 running sum, as a naive
  // implementation would, to show what the cache's precise L prevents.
  bool float32_cumulative_l = false;
};

// Logits [T][V] of every position of `tokens`.
std::vector<std::vector<double>> ReferenceLogits(const FoxConfig& config,
                                                 const FoxWeights& weights,
                                                 absl::Span<const int32_t> tokens,
                                                 const ReferenceOptions& options = {});

// Norm-wise relative error ||a - b|| / ||b|| of one logit row.
double RelativeError(absl::Span<const float> a, absl::Span<const double> b);

}  // namespace fox::testing
