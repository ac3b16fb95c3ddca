#include "engine/block_pool.h"

#include <cassert>
#include <cstdio>
#include <cstdlib>

namespace fox {

BlockPool::BlockPool(int32_t num_blocks, int32_t block_size, int32_t head_dim, DType kv_dtype) {
  view_.num_blocks = num_blocks;
  view_.block_size = block_size;
  view_.head_dim = head_dim;
  view_.kv_dtype = kv_dtype;
  const int64_t bytes = int64_t{num_blocks} * view_.BlockElems() * DTypeSize(kv_dtype);
  k_.reset(new uint8_t[bytes]);
  v_.reset(new uint8_t[bytes]);
  anchor_.reset(new double[num_blocks]);
  offset_.reset(new float[int64_t{num_blocks} * block_size]);
  view_.k = k_.get();
  view_.v = v_.get();
  view_.l_anchor = anchor_.get();
  view_.l_offset = offset_.get();
  free_.reserve(num_blocks);
  for (int32_t b = num_blocks - 1; b >= 0; --b) free_.push_back(b);  // hand out 0, 1, 2, ...
  is_free_.assign(num_blocks, true);
}

std::optional<int32_t> BlockPool::Allocate() {
  if (free_.empty()) return std::nullopt;
  const int32_t block = free_.back();
  free_.pop_back();
  is_free_[block] = false;
  return block;
}

void BlockPool::Free(int32_t block) {
  if (block < 0 || block >= view_.num_blocks || is_free_[block]) {
    std::fprintf(stderr, "%s:%d: invalid or double free of KV block %d\n", __FILE__, __LINE__,
                 block);
    std::abort();
  }
  is_free_[block] = true;
  free_.push_back(block);
}

int64_t BlockPool::BlocksForBytes(int64_t bytes, int32_t block_size, int32_t head_dim,
                                  DType kv_dtype) {
  PagedKv geometry;
  geometry.block_size = block_size;
  geometry.head_dim = head_dim;
  geometry.kv_dtype = kv_dtype;
  return bytes / geometry.BlockBytes();
}

}  // namespace fox
