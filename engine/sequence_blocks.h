// One sequence's KV blocks: a table per (layer, head) mapping logical blocks
// to pool blocks. Blocks before a table's first live block have been returned
// to the pool; freeing from the front is O(1) (an offset moves).
#pragma once

#include <cstdint>
#include <vector>

#include "engine/block_pool.h"
#include "kernels/paged_kv.h"

namespace fox {

class SequenceBlocks {
 public:
  explicit SequenceBlocks(int32_t num_tables) : tables_(num_tables) {}

  // Makes every table hold blocks for positions [0, num_tokens). Returns false
  // (allocating nothing) when the pool cannot supply them all.
  bool Reserve(BlockPool& pool, int64_t num_tokens);
  // Returns every block to the pool.
  void ReleaseAll(BlockPool& pool);

  // Views for the forward pass, valid until the next Reserve/ReleaseAll.
  const std::vector<HeadBlockTable>& Views();
  int64_t num_allocated() const;

 private:
  struct Table {
    std::vector<int32_t> blocks;  // blocks[first_live_index ..] are live
    int32_t first_live_index = 0; // == logical index of the first live block
  };
  std::vector<Table> tables_;
  std::vector<HeadBlockTable> views_;
};

}  // namespace fox
