// Paged forgetting-attention decode, split-K partials and their merge. Written
// to mirror decode_split_reference.cc step by step (same rounding of L: a
// double difference to the block anchor, then float offsets), not yet tuned:
// one thread block of 128 threads per work item, a warp per key for the dot
// products, the block's scores and weights in shared memory.
// Compiled for sm_90 (+ PTX) in every CUDA build but not yet run on a GPU:
// tests/kernels/cuda/paged_decode_attention_gpu_test.cc (ctest -L gpu) is
// the check it has to pass first.
#include <math_constants.h>

#include <cstdint>

#include "kernels/cuda/paged_decode_attention.h"

namespace fox::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kMaxBlockSize = 256;
constexpr int kMaxHeadDim = 256;
constexpr int kAccPerThread = kMaxHeadDim / kThreads;

template <bool kBf16>
__device__ __forceinline__ float LoadKv(const void* base, int64_t i) {
  if constexpr (kBf16) {
    return __uint_as_float(static_cast<uint32_t>(static_cast<const uint16_t*>(base)[i]) << 16);
  } else {
    return static_cast<const float*>(base)[i];
  }
}

template <bool kMax>
__device__ __forceinline__ float WarpReduce(float x) {
  for (int o = 16; o > 0; o >>= 1) {
    const float y = __shfl_xor_sync(0xffffffffu, x, o);
    x = kMax ? fmaxf(x, y) : x + y;
  }
  return x;
}

// Sum or max over the thread block; every thread gets the result.
template <bool kMax>
__device__ float BlockReduce(float x, float* s_red /* [kWarps] */) {
  x = WarpReduce<kMax>(x);
  if ((threadIdx.x & 31) == 0) s_red[threadIdx.x >> 5] = x;
  __syncthreads();
  float r = s_red[0];
  for (int w = 1; w < kWarps; ++w) r = kMax ? fmaxf(r, s_red[w]) : r + s_red[w];
  __syncthreads();
  return r;
}

template <bool kBf16>
__global__ void __launch_bounds__(kThreads)
    PagedDecodePartialsKernel(PagedDecodeKv kv, PagedDecodeQueries qs, PagedDecodeWork work) {
  __shared__ float s_q[kMaxHeadDim];
  __shared__ float s_w[kMaxBlockSize];  // scores, then weights, of one key block
  __shared__ float s_red[kWarps];
  const int item = blockIdx.x;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int d = kv.head_dim, bs = kv.block_size;
  const int s = work.item_seq[item], h = work.item_head[item];
  const int64_t pos = qs.pos[s];
  const double l_query = qs.query_l[int64_t{s} * qs.num_heads + h];
  const float scale = 1.0f / sqrtf(static_cast<float>(d));

  const float* q = qs.q + (int64_t{s} * qs.num_heads + h) * d;
  for (int c = tid; c < d; c += kThreads) s_q[c] = q[c];
  __syncthreads();

  float delta = 0.0f;
  if (qs.acp) {  // uniform over the block
    float u;
    if (qs.u_static != nullptr) {
      u = qs.u_static[h];
    } else {
      float qq = 0.0f;
      for (int c = tid; c < d; c += kThreads) qq += s_q[c] * s_q[c];
      qq = BlockReduce<false>(qq, s_red);
      u = sqrtf(qq) * qs.key_norm_max[int64_t{s} * qs.num_heads + h] * scale;
    }
    delta = -2.0f * u - static_cast<float>(log(static_cast<double>(pos + 1))) + qs.log_eps;
  }

  const int32_t* meta = kv.table_words + 4 * (qs.row_of_seq[s] + h);
  const int32_t* pool_id = kv.table_words + kv.meta_words + meta[0] - meta[1];  // by logical block

  float running_max = -CUDART_INF_F, sum = 0.0f;
  float acc[kAccPerThread];
  for (int k = 0; k < kAccPerThread; ++k) acc[k] = 0.0f;
  bool pruning = qs.acp;  // D rises with the key position: only a prefix is dropped
  const int logical_end = work.item_first_block[item] + work.item_num_blocks[item];
  for (int logical = work.item_first_block[item]; logical < logical_end; ++logical) {
    const int32_t block = pool_id[logical];
    const int n = static_cast<int>(min(int64_t{bs}, pos - int64_t{logical} * bs + 1));
    const float base = static_cast<float>(l_query - kv.l_anchor[block]);
    const float* offsets = kv.l_offset + int64_t{block} * bs;
    int first = 0;
    if (pruning) {  // every thread decides alike, so control flow stays uniform
      if (base - offsets[n - 1] < delta) continue;
      while (base - offsets[first] < delta) ++first;
      pruning = false;
    }
    const int64_t elem0 = int64_t{block} * bs * d;
    for (int j = first + warp; j < n; j += kWarps) {
      float dot = 0.0f;
      for (int c = lane; c < d; c += 32) dot += s_q[c] * LoadKv<kBf16>(kv.k, elem0 + j * d + c);
      dot = WarpReduce<false>(dot);
      if (lane == 0) s_w[j] = dot * scale + (base - offsets[j]);
    }
    __syncthreads();
    float m = -CUDART_INF_F;
    for (int j = first + tid; j < n; j += kThreads) m = fmaxf(m, s_w[j]);
    const float new_max = fmaxf(running_max, BlockReduce<true>(m, s_red));
    const float correction = expf(running_max - new_max);  // 1 when the max holds
    running_max = new_max;
    float w_sum = 0.0f;
    for (int j = first + tid; j < n; j += kThreads) {
      const float w = expf(s_w[j] - running_max);
      s_w[j] = w;
      w_sum += w;
    }
    sum = sum * correction + BlockReduce<false>(w_sum, s_red);  // also publishes s_w
    for (int k = 0; k < kAccPerThread; ++k) {
      const int c = tid + k * kThreads;
      if (c >= d) break;
      float a = acc[k] * correction;
      for (int j = first; j < n; ++j) a += s_w[j] * LoadKv<kBf16>(kv.v, elem0 + j * d + c);
      acc[k] = a;
    }
    __syncthreads();  // s_w is rewritten by the next block
  }
  for (int k = 0; k < kAccPerThread; ++k) {
    const int c = tid + k * kThreads;
    if (c < d) work.partial_acc[int64_t{item} * d + c] = acc[k];
  }
  if (tid == 0) {
    work.partial_max[item] = running_max;
    work.partial_sum[item] = sum;
  }
}

__global__ void __launch_bounds__(kThreads)
    PagedDecodeMergeKernel(PagedDecodeWork work, int32_t head_dim, float* out) {
  const int r = blockIdx.x;
  const int begin = work.merge_indptr[r], end = work.merge_indptr[r + 1];
  float* out_r = out + int64_t{r} * head_dim;
  float m = -CUDART_INF_F;
  for (int p = begin; p < end; ++p) m = fmaxf(m, work.partial_max[p]);
  for (int c = threadIdx.x; c < head_dim; c += kThreads) {
    if (m == -CUDART_INF_F) {
      out_r[c] = 0.0f;
      continue;
    }
    float sum = 0.0f, a = 0.0f;
    for (int p = begin; p < end; ++p) {
      if (work.partial_sum[p] == 0.0f) continue;
      const float w = expf(work.partial_max[p] - m);
      sum += w * work.partial_sum[p];
      a += w * work.partial_acc[int64_t{p} * head_dim + c];
    }
    out_r[c] = a * (1.0f / sum);
  }
}

}  // namespace

cudaError_t LaunchPagedDecodePartials(const PagedDecodeKv& kv, const PagedDecodeQueries& queries,
                                      const PagedDecodeWork& work, cudaStream_t stream) {
  if (kv.block_size < 1 || kv.block_size > kMaxBlockSize || kv.head_dim < 1 ||
      kv.head_dim > kMaxHeadDim) {
    return cudaErrorInvalidValue;
  }
  if (work.num_items == 0) return cudaSuccess;
  if (kv.bf16) {
    PagedDecodePartialsKernel<true><<<work.num_items, kThreads, 0, stream>>>(kv, queries, work);
  } else {
    PagedDecodePartialsKernel<false><<<work.num_items, kThreads, 0, stream>>>(kv, queries, work);
  }
  return cudaGetLastError();
}

cudaError_t LaunchPagedDecodeMerge(const PagedDecodeWork& work, int32_t num_ranges,
                                   int32_t head_dim, float* out, cudaStream_t stream) {
  if (head_dim < 1 || head_dim > kMaxHeadDim) return cudaErrorInvalidValue;
  if (num_ranges == 0) return cudaSuccess;
  PagedDecodeMergeKernel<<<num_ranges, kThreads, 0, stream>>>(work, head_dim, out);
  return cudaGetLastError();
}

}  // namespace fox::cuda
