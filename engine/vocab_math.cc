#include "engine/vocab_math.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace fox {
namespace {

// GCC/Clang vector extensions: 8 floats, compiled to AVX2 (or pairs of SSE
// registers) as -march allows, with no intrinsics to keep per target.
typedef float F8 __attribute__((vector_size(32)));
typedef int32_t I8 __attribute__((vector_size(32)));
constexpr int kLanes = 8;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

inline F8 Load(const float* p) {
  F8 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

inline F8 Splat(float x) { return F8{} + x; }

// exp(x) lane-wise for x <= 0: x = n ln2 + r with |r| <= ln2 / 2 (Cody-Waite
// split of ln2), exp(r) by its Taylor series to r^7 (relative error < 1e-8
// there; 2e-6 after float rounding), and 2^n assembled in the exponent bits. Below -87 (and NaN):
// 0, as float's exp underflows there anyway.
inline F8 ExpNonPositive(F8 x) {
  const I8 in_range = x >= Splat(-87.0f);  // all ones where true; false for NaN
  x = in_range ? x : Splat(0.0f);
  const F8 round = Splat(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  const F8 n = (x * 1.44269504088896341f + round) - round;
  const F8 r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  F8 p = Splat(1.0f / 5040.0f);
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const I8 bits = (__builtin_convertvector(n, I8) + 127) << 23;
  const F8 result = p * (F8)bits;  // same-size vector cast: the bits as floats
  return in_range ? result : Splat(0.0f);
}

float ExpNonPositive(float x) {
  const F8 v = ExpNonPositive(Splat(x));
  return v[0];
}

}  // namespace

float MaxOf(absl::Span<const float> span) {
  const float* x = span.data();
  const size_t n = span.size();
  F8 lanes = Splat(kNegInf);
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const F8 v = Load(x + i);
    lanes = v > lanes ? v : lanes;  // NaN never wins
  }
  float best = kNegInf;
  for (int j = 0; j < kLanes; ++j) best = lanes[j] > best ? lanes[j] : best;
  for (; i < n; ++i) best = x[i] > best ? x[i] : best;
  return best;
}

int32_t Argmax(absl::Span<const float> span) {
  // One pass: each lane keeps its best value and the first index holding it
  // (strict >), then the lowest index among the lanes that hold the maximum.
  const float* x = span.data();
  const int32_t n = static_cast<int32_t>(span.size());
  F8 lanes = Splat(kNegInf);
  I8 where = I8{} - 1;
  I8 index = {0, 1, 2, 3, 4, 5, 6, 7};
  int32_t i = 0;
  for (; i + kLanes <= n; i += kLanes, index += kLanes) {
    const F8 v = Load(x + i);
    const I8 better = v > lanes;
    lanes = better ? v : lanes;
    where = better ? index : where;
  }
  float best = kNegInf;
  int32_t best_index = 0;
  for (int j = 0; j < kLanes; ++j) {
    if (lanes[j] > best || (lanes[j] == best && where[j] < best_index && best > kNegInf)) {
      best = lanes[j];
      best_index = where[j];
    }
  }
  for (; i < n; ++i) {
    if (x[i] > best) {
      best = x[i];
      best_index = i;
    }
  }
  return best > kNegInf ? best_index : 0;
}

void ExpShifted(absl::Span<const float> span, float shift, float scale, float* out) {
  const float* x = span.data();
  const size_t n = span.size();
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const F8 e = ExpNonPositive((Load(x + i) - shift) * scale);
    std::memcpy(out + i, &e, sizeof(e));
  }
  for (; i < n; ++i) out[i] = ExpNonPositive((x[i] - shift) * scale);
}

double SumExpShifted(absl::Span<const float> span, float shift) {
  // Float lanes over short runs, then double across runs: the 50k-term sum
  // keeps float precision.
  constexpr size_t kRun = 32 * kLanes;
  const float* x = span.data();
  const size_t n = span.size();
  double total = 0.0;
  size_t i = 0;
  for (; i + kRun <= n; i += kRun) {
    F8 lanes = Splat(0.0f);
    for (size_t k = 0; k < kRun; k += kLanes) lanes += ExpNonPositive(Load(x + i + k) - shift);
    for (int j = 0; j < kLanes; ++j) total += lanes[j];
  }
  for (; i < n; ++i) total += ExpNonPositive(x[i] - shift);
  return total;
}

}  // namespace fox
