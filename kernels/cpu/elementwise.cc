#include "kernels/cpu/elementwise.h"

#include <cmath>

#include "kernels/cpu/vec.h"

namespace fox::cpu {
namespace {

// Enough work per row to be worth waking the thread pool.
bool Parallel(int64_t rows, int64_t dim) { return rows > 1 && rows * dim >= 16384; }

inline float InverseRms(const float* x, int64_t dim, float eps) {
  const float sum_sq = DotF32(x, x, dim);
  return 1.0f / std::sqrt(sum_sq / static_cast<float>(dim) + eps);
}

}  // namespace

void RmsNorm(const float* x, int64_t rows, int64_t dim, const float* w, float eps, float* y) {
#pragma omp parallel for schedule(static) if (Parallel(rows, dim))
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    const float inv = InverseRms(xr, dim, eps);
#pragma omp simd
    for (int64_t i = 0; i < dim; ++i) yr[i] = xr[i] * inv * w[i];
  }
}

void GroupRmsNorm(float* x, int64_t rows, int64_t groups, int64_t dim, const float* w,
                  int64_t w_group_stride, float eps) {
  const int64_t n = rows * groups;
#pragma omp parallel for schedule(static) if (Parallel(n, dim))
  for (int64_t rg = 0; rg < n; ++rg) {
    float* xg = x + rg * dim;
    const float* wg = w + (rg % groups) * w_group_stride;
    const float inv = InverseRms(xg, dim, eps);
#pragma omp simd
    for (int64_t i = 0; i < dim; ++i) xg[i] = xg[i] * inv * wg[i];
  }
}

void SigmoidInPlace(float* x, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= 65536)
  for (int64_t i = 0; i < n; ++i) x[i] = 1.0f / (1.0f + std::exp(-x[i]));
}

void LogSigmoidWithBiasInPlace(float* x, int64_t rows, int64_t cols, const float* bias) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const float z = x[r * cols + c] + bias[c];
      // log(sigmoid(z)) = min(z, 0) - log1p(exp(-|z|))
      x[r * cols + c] = std::fmin(z, 0.0f) - std::log1p(std::exp(-std::fabs(z)));
    }
  }
}

void SiluMul(const float* gu, int64_t rows, int64_t I, float* out) {
#pragma omp parallel for schedule(static) if (Parallel(rows, I))
  for (int64_t r = 0; r < rows; ++r) {
    const float* g = gu + r * 2 * I;
    const float* u = g + I;
    float* o = out + r * I;
    for (int64_t i = 0; i < I; ++i) o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
  }
}

void AddInPlace(float* x, const float* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= 65536)
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

void MulInPlace(float* x, const float* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= 65536)
  for (int64_t i = 0; i < n; ++i) x[i] *= y[i];
}

void EmbeddingLookup(const void* table, DType dtype, int64_t dim, const int32_t* ids,
                     int64_t num_ids, float* out) {
  const int64_t row_bytes = dim * DTypeSize(dtype);
  for (int64_t t = 0; t < num_ids; ++t) {
    const char* row = static_cast<const char*>(table) + ids[t] * row_bytes;
    ConvertToF32(row, dtype, dim, out + t * dim);
  }
}

}  // namespace fox::cpu
