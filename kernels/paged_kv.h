// The paged KV cache as the kernels see it: one pool of blocks, each holding
// `block_size` consecutive tokens of ONE (layer, head), and per (sequence,
// layer, head) a table of the blocks still live.
//
//   pool block b:  k[b] : [block_size, head_dim]  kv_dtype
//                  v[b] : [block_size, head_dim]  kv_dtype
//                  l_anchor[b] : double   L of the block's first token
//                  l_offset[b] : [block_size] float   L - l_anchor[b]
//
//   HeadBlockTable: blocks[0 .. num_blocks)  = pool ids of logical blocks
//                   first_block .. first_block + num_blocks - 1
//   (logical blocks before first_block were freed by ACP eviction)
//
// L is cumulative and unbounded, so it is stored as a double anchor per block
// plus float offsets: differences L_i - L_j keep ~1e-6 precision at any length.
#pragma once

#include <cstdint>

#include "kernels/dtype.h"

namespace fox {

struct PagedKv {
  void* k = nullptr;
  void* v = nullptr;
  double* l_anchor = nullptr;
  float* l_offset = nullptr;
  int32_t num_blocks = 0;
  int32_t block_size = 16;
  int32_t head_dim = 64;
  DType kv_dtype = DType::kF32;

  int64_t BlockElems() const { return int64_t{block_size} * head_dim; }
  // Bytes of one block: K, V, anchor and offsets.
  int64_t BlockBytes() const {
    return 2 * BlockElems() * DTypeSize(kv_dtype) + 8 + 4 * int64_t{block_size};
  }
};

struct HeadBlockTable {
  const int32_t* blocks = nullptr;
  int32_t first_block = 0;
  int32_t num_blocks = 0;
};

// Stores token `pos` of one head: k, v [head_dim] and its cumulative L.
// The table must hold the block of `pos`.
void WriteKvToken(const PagedKv& kv, const HeadBlockTable& table, int64_t pos, const float* k,
                  const float* v, double l);

// Reads token `pos` back as float32 (tests and debugging).
void ReadKvToken(const PagedKv& kv, const HeadBlockTable& table, int64_t pos, float* k, float* v,
                 double* l);

}  // namespace fox
