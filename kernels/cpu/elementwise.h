// Row-wise and element-wise ops of the FoX forward pass on float32 buffers.
// Rows are processed in parallel; each row's arithmetic is fixed-order.
#pragma once

#include <cstdint>

#include "kernels/dtype.h"

namespace fox::cpu {

// y[r] = x[r] / rms(x[r]) * w.  x, y: [rows, dim] (may alias).  w: [dim].
void RmsNorm(const float* x, int64_t rows, int64_t dim, const float* w, float eps, float* y);

// In place over each group of `dim` channels: x[r, g] = x[r, g] / rms * w_g,
// where w_g = w + g * w_group_stride (stride 0: one weight shared by all
// groups).  x: [rows, groups, dim].
void GroupRmsNorm(float* x, int64_t rows, int64_t groups, int64_t dim, const float* w,
                  int64_t w_group_stride, float eps);

void SigmoidInPlace(float* x, int64_t n);
// x = log(sigmoid(x + bias[i % bias_len])), computed without overflow.
void LogSigmoidWithBiasInPlace(float* x, int64_t rows, int64_t cols, const float* bias);

// out[r, i] = silu(gu[r, i]) * gu[r, I + i].  gu: [rows, 2I], out: [rows, I].
void SiluMul(const float* gu, int64_t rows, int64_t I, float* out);

// x[i] += y[i]
void AddInPlace(float* x, const float* y, int64_t n);
// x[i] *= y[i]
void MulInPlace(float* x, const float* y, int64_t n);

// out[t] = table[ids[t]] as float32.  table: [V, dim] of `dtype`.
void EmbeddingLookup(const void* table, DType dtype, int64_t dim, const int32_t* ids,
                     int64_t num_ids, float* out);

}  // namespace fox::cpu
