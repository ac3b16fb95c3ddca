// The KV block pool: one allocation made at start, handed out block by block.
// A block holds block_size tokens of one (layer, head): K, V and L (see
// kernels/paged_kv.h for the layout). Owned by the engine thread; not
// thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "kernels/paged_kv.h"

namespace fox {

class BlockPool {
 public:
  BlockPool(int32_t num_blocks, int32_t block_size, int32_t head_dim, DType kv_dtype);

  // A free block, or nullopt when the pool is dry (a value, not an error).
  std::optional<int32_t> Allocate();
  void Free(int32_t block);

  int32_t num_blocks() const { return view_.num_blocks; }
  int32_t num_free() const { return static_cast<int32_t>(free_.size()); }
  int32_t num_used() const { return num_blocks() - num_free(); }
  bool IsFree(int32_t block) const { return is_free_[block]; }
  const PagedKv& view() const { return view_; }

  // Blocks that fit in `bytes` for this geometry (kv_budget.h turns the
  // --kv-cache-memory flag into bytes).
  static int64_t BlocksForBytes(int64_t bytes, int32_t block_size, int32_t head_dim,
                                DType kv_dtype);

 private:
  PagedKv view_;
  std::unique_ptr<uint8_t[]> k_, v_;
  std::unique_ptr<double[]> anchor_;
  std::unique_ptr<float[]> offset_;
  std::vector<int32_t> free_;  // stack of free block ids
  std::vector<bool> is_free_;  // guards against double frees
};

}  // namespace fox
