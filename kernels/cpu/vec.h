// Small vector helpers for the CPU kernels: dot products and axpy over float32
// and bfloat16 rows, with AVX-512 / AVX2 paths chosen at compile time
// (-march) and a scalar fallback. Each reduction runs in a fixed order, so a
// row's result never depends on what else is in the batch.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <type_traits>

#include "kernels/dtype.h"

namespace fox::cpu {

#if defined(__AVX512F__)
inline __m512 LoadBf16x16(const uint16_t* p) {
  __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  // The maskz forms: GCC 12 warns about the undefined pass-through operand
  // of the unmasked ones.
  const __m512i wide = _mm512_maskz_cvtepu16_epi32(0xffff, h);
  return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xffff, wide, 16));
}
#endif
#if defined(__AVX2__)
inline __m256 LoadBf16x8(const uint16_t* p) {
  __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
inline float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}
#endif

// Dot products. Every variant reduces a row in the same order (two vector
// accumulators over pairs of vectors, one more vector into the first, their
// horizontal sum, then the scalar tail), so the single-row and four-row
// kernels give bitwise-equal results per row.
#if defined(__AVX512F__)
inline constexpr int64_t kLanes = 16;
using VecF = __m512;
inline VecF VZero() { return _mm512_setzero_ps(); }
inline VecF VLoad(const float* p) { return _mm512_loadu_ps(p); }
inline VecF VLoad(const uint16_t* p) { return LoadBf16x16(p); }
inline VecF VFma(VecF a, VecF b, VecF c) { return _mm512_fmadd_ps(a, b, c); }
inline float VSum(VecF a, VecF b) {
  const __m512d v = _mm512_castps_pd(_mm512_add_ps(a, b));
  const __m256 low = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xf, v, 0));
  const __m256 high = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xf, v, 1));
  return HorizontalSum(_mm256_add_ps(low, high));
}
#elif defined(__AVX2__)
inline constexpr int64_t kLanes = 8;
using VecF = __m256;
inline VecF VZero() { return _mm256_setzero_ps(); }
inline VecF VLoad(const float* p) { return _mm256_loadu_ps(p); }
inline VecF VLoad(const uint16_t* p) { return LoadBf16x8(p); }
inline VecF VFma(VecF a, VecF b, VecF c) { return _mm256_fmadd_ps(a, b, c); }
inline float VSum(VecF a, VecF b) { return HorizontalSum(_mm256_add_ps(a, b)); }
#endif

inline float ToF32(float v) { return v; }
inline float ToF32(uint16_t v) { return Bf16ToF32(v); }

// sum_i a[i] * b[i], b float32 or bfloat16
template <typename W>
inline float Dot(const float* a, const W* b, int64_t n) {
  int64_t i = 0;
  float sum = 0.0f;
#if defined(__AVX512F__) || defined(__AVX2__)
  VecF acc0 = VZero(), acc1 = VZero();
  for (; i + 2 * kLanes <= n; i += 2 * kLanes) {
    acc0 = VFma(VLoad(a + i), VLoad(b + i), acc0);
    acc1 = VFma(VLoad(a + i + kLanes), VLoad(b + i + kLanes), acc1);
  }
  for (; i + kLanes <= n; i += kLanes) acc0 = VFma(VLoad(a + i), VLoad(b + i), acc0);
  sum = VSum(acc0, acc1);
#endif
  for (; i < n; ++i) sum += a[i] * ToF32(b[i]);
  return sum;
}

inline float DotF32(const float* a, const float* b, int64_t n) { return Dot(a, b, n); }
inline float DotBf16(const float* a, const uint16_t* b, int64_t n) { return Dot(a, b, n); }

// out[r] = Dot(x, w + r * K, K) for four consecutive rows of w, interleaved:
// eight independent FMA chains and four load streams in flight.
template <typename W>
inline void Dot4Rows(const float* x, const W* w, int64_t K, float* out) {
  int64_t i = 0;
  float sum[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#if defined(__AVX512F__) || defined(__AVX2__)
  VecF acc0[4] = {VZero(), VZero(), VZero(), VZero()};
  VecF acc1[4] = {VZero(), VZero(), VZero(), VZero()};
  for (; i + 2 * kLanes <= K; i += 2 * kLanes) {
    const VecF x0 = VLoad(x + i), x1 = VLoad(x + i + kLanes);
    for (int r = 0; r < 4; ++r) {
      acc0[r] = VFma(x0, VLoad(w + r * K + i), acc0[r]);
      acc1[r] = VFma(x1, VLoad(w + r * K + i + kLanes), acc1[r]);
    }
  }
  for (; i + kLanes <= K; i += kLanes) {
    const VecF x0 = VLoad(x + i);
    for (int r = 0; r < 4; ++r) acc0[r] = VFma(x0, VLoad(w + r * K + i), acc0[r]);
  }
  for (int r = 0; r < 4; ++r) sum[r] = VSum(acc0[r], acc1[r]);
#endif
  for (; i < K; ++i) {
    for (int r = 0; r < 4; ++r) sum[r] += x[i] * ToF32(w[r * K + i]);
  }
  for (int r = 0; r < 4; ++r) out[r] = sum[r];
}

// y[i] += w * x[i], x float32 or bfloat16
template <typename X>
inline void Axpy(float* y, float w, const X* x, int64_t n) {
  int64_t i = 0;
#if defined(__AVX512F__)
  const __m512 weight = _mm512_set1_ps(w);
  for (; i + kLanes <= n; i += kLanes) {
    _mm512_storeu_ps(y + i, _mm512_fmadd_ps(weight, VLoad(x + i), _mm512_loadu_ps(y + i)));
  }
#elif defined(__AVX2__)
  const __m256 weight = _mm256_set1_ps(w);
  for (; i + kLanes <= n; i += kLanes) {
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(weight, VLoad(x + i), _mm256_loadu_ps(y + i)));
  }
#endif
  for (; i < n; ++i) y[i] += w * ToF32(x[i]);
}

}  // namespace fox::cpu
