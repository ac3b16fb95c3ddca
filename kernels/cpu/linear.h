// y = x W^T for a torch-layout weight W [N, K] (float32 or bfloat16).
// Few rows (decode) stream W once through a vectorised dot-product kernel that
// is bandwidth-bound by design; many rows (prefill) go to the BLAS sgemm,
// bfloat16 weights through panels converted to float32 on the fly.
#pragma once

#include <cstdint>

#include "kernels/dtype.h"

namespace fox::cpu {

// Row counts below this use the streaming kernel, at or above it the BLAS.
inline constexpr int64_t kLinearGemmMinRows = 12;

// x: [T, K] float32, row stride K.  w: [N, K] of `w_type`.  y: [T, N] float32.
void Linear(const float* x, int64_t T, int64_t K, const void* w, DType w_type, int64_t N,
            float* y);

// The streaming kernel alone (exposed for tests and benchmarks).
void LinearStreaming(const float* x, int64_t T, int64_t K, const void* w, DType w_type,
                     int64_t N, float* y);

}  // namespace fox::cpu
