// Paged forgetting-attention decode on the GPU, split-K: one thread block per
// work item of a host plan (kernels/cuda/decode_plan.h) computes the partial
// softmax state of its chunk of key blocks; a merge kernel combines the
// partials of each (sequence, head) by the log-sum-exp rule. The math, the
// ACP skip and the rounding of L follow kernels/cuda/decode_split_reference.h
// (itself tested against kernels/cpu/forget_attention.h).
//
// Block tables come as the image of kernels/cuda/block_table_mirror.h:
//   meta of row r = table_words[4r .. 4r+4) = {offset, base, first, end}
//   pool id of logical block b = table_words[meta_words + offset + b - base]
//   row of (seq s, head h) = row_of_seq[s] + h   (slot * num_tables + layer * num_heads)
// Every pointer is device memory. Both launchers are asynchronous on `stream`
// and capturable by CUDA graphs (no allocation, no host sync).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace fox::cuda {

struct PagedDecodeKv {
  const void* k = nullptr;               // [pool_blocks, block_size, head_dim] f32 or bf16 bits
  const void* v = nullptr;               // [pool_blocks, block_size, head_dim]
  const double* l_anchor = nullptr;      // [pool_blocks]
  const float* l_offset = nullptr;       // [pool_blocks, block_size]
  const int32_t* table_words = nullptr;  // mirror image
  int32_t meta_words = 0;
  int32_t block_size = 16;  // <= 256
  int32_t head_dim = 64;    // <= 256
  bool bf16 = false;        // else f32
};

struct PagedDecodeQueries {
  const float* q = nullptr;             // [num_seqs, num_heads, head_dim]
  const int32_t* row_of_seq = nullptr;  // [num_seqs]
  const int64_t* pos = nullptr;         // [num_seqs] position of each query
  const double* query_l = nullptr;      // [num_seqs, num_heads]
  int32_t num_seqs = 0;
  int32_t num_heads = 0;
  // ACP per-step skip: delta = -2U - log(pos + 1) + log_eps, U = u_static[h]
  // or ||q|| * key_norm_max[s, h] / sqrt(d) when u_static is null.
  bool acp = false;
  float log_eps = -10.0f;
  const float* u_static = nullptr;      // [num_heads] or null
  const float* key_norm_max = nullptr;  // [num_seqs, num_heads] or null
};

struct PagedDecodeWork {
  const int32_t* item_seq = nullptr;          // [num_items]
  const int32_t* item_head = nullptr;         // [num_items]
  const int32_t* item_first_block = nullptr;  // [num_items]
  const int32_t* item_num_blocks = nullptr;   // [num_items]
  const int32_t* merge_indptr = nullptr;      // [num_seqs * num_heads + 1]
  int32_t num_items = 0;
  float* partial_acc = nullptr;  // [num_items, head_dim] sum_j exp(s_j - m) v_j
  float* partial_max = nullptr;  // [num_items] m (-inf: every key skipped)
  float* partial_sum = nullptr;  // [num_items] sum_j exp(s_j - m)
};

// Partials of every work item.
cudaError_t LaunchPagedDecodePartials(const PagedDecodeKv& kv, const PagedDecodeQueries& queries,
                                      const PagedDecodeWork& work, cudaStream_t stream);

// out [num_seqs, num_heads, head_dim] from the partials; zeros for a
// (sequence, head) without items or whose keys were all skipped.
cudaError_t LaunchPagedDecodeMerge(const PagedDecodeWork& work, int32_t num_ranges,
                                   int32_t head_dim, float* out, cudaStream_t stream);

}  // namespace fox::cuda
