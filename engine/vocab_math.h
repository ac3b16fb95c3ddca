// Whole-vocabulary passes of sampling (50k logits per token per request):
// argmax, exp and sums, written as branch-free loops over fixed lanes that
// GCC vectorizes at -O3 without fast-math, so that sampling one token costs
// microseconds rather than a scalar libm exp per vocabulary entry.
#pragma once

#include <cstdint>

#include "absl/types/span.h"

namespace fox {

// The largest value (NaN entries never win; -inf when all are NaN or -inf).
float MaxOf(absl::Span<const float> x);
// The index of the largest value, the lowest on ties; 0 when none is larger
// than -inf (all -inf or NaN).
int32_t Argmax(absl::Span<const float> x);

// out[i] = exp((x[i] - shift) * scale) for x[i] <= shift (scale > 0);
// relative error below 2e-6, and exactly 0 below e^-87. `out` has x.size().
void ExpShifted(absl::Span<const float> x, float shift, float scale, float* out);
// Sum of exp(x[i] - shift) over x, accumulated in double.
double SumExpShifted(absl::Span<const float> x, float shift);

}  // namespace fox
