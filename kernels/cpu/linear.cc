#include "kernels/cpu/linear.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <type_traits>
#include <cassert>
#include <vector>

#include "kernels/cpu/vec.h"

namespace fox::cpu {
namespace {

// Rows of W converted per sgemm call when W is bfloat16: large enough for the
// BLAS to run at full rate, small enough to stay in the last-level cache.
int64_t Bf16PanelRows(int64_t K) { return std::max<int64_t>(64, (int64_t{1} << 20) / K); }

void ConvertPanel(const uint16_t* w, int64_t rows, int64_t K, float* out) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const uint16_t* src = w + r * K;
    float* dst = out + r * K;
#pragma omp simd
    for (int64_t k = 0; k < K; ++k) dst[k] = Bf16ToF32(src[k]);
  }
}

// Each task streams 16 rows of W once. float32 rows go four at a time (more
// memory requests in flight); bfloat16 rows one at a time, where the widening
// of each vector, not memory, limits the interleaved form.
template <typename W>
void StreamRows(const float* x, int64_t T, int64_t K, const W* w, int64_t N, float* y) {
  constexpr int64_t kRowsPerTask = 16;
  constexpr bool kInterleave = std::is_same_v<W, float>;
  const int64_t num_tasks = (N + kRowsPerTask - 1) / kRowsPerTask;
#pragma omp parallel for schedule(static)
  for (int64_t task = 0; task < num_tasks; ++task) {
    const int64_t n_end = std::min(N, (task + 1) * kRowsPerTask);
    int64_t n = task * kRowsPerTask;
    if constexpr (kInterleave) {
      for (; n + 4 <= n_end; n += 4) {
        for (int64_t t = 0; t < T; ++t) {
          float out[4];
          Dot4Rows(x + t * K, w + n * K, K, out);
          for (int r = 0; r < 4; ++r) y[t * N + n + r] = out[r];
        }
      }
    }
    for (; n < n_end; ++n) {
      for (int64_t t = 0; t < T; ++t) y[t * N + n] = Dot(x + t * K, w + n * K, K);
    }
  }
}

}  // namespace

void LinearStreaming(const float* x, int64_t T, int64_t K, const void* w, DType w_type,
                     int64_t N, float* y) {
  assert(w_type == DType::kF32 || w_type == DType::kBF16);
  if (w_type == DType::kF32) {
    StreamRows(x, T, K, static_cast<const float*>(w), N, y);
  } else {
    StreamRows(x, T, K, static_cast<const uint16_t*>(w), N, y);
  }
}

void Linear(const float* x, int64_t T, int64_t K, const void* w, DType w_type, int64_t N,
            float* y) {
  if (T < kLinearGemmMinRows) {
    LinearStreaming(x, T, K, w, w_type, N, y);
    return;
  }
  if (w_type == DType::kF32) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, N, K, 1.0f, x, K,
                static_cast<const float*>(w), K, 0.0f, y, N);
    return;
  }
  assert(w_type == DType::kBF16);
  const int64_t panel_rows = std::min(N, Bf16PanelRows(K));
  thread_local std::vector<float> panel;
  panel.resize(panel_rows * K);
  const uint16_t* wb = static_cast<const uint16_t*>(w);
  for (int64_t n0 = 0; n0 < N; n0 += panel_rows) {
    const int64_t rows = std::min(panel_rows, N - n0);
    ConvertPanel(wb + n0 * K, rows, K, panel.data());
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, rows, K, 1.0f, x, K, panel.data(), K,
                0.0f, y + n0, N);
  }
}

}  // namespace fox::cpu
