// One sequence's KV blocks: a table per (layer, head) mapping logical blocks
// to pool blocks. ACP eviction returns blocks from the front of a table to
// the pool; that is O(1) per block (an index moves), and the logical numbering
// never shifts, so the attention kernel keeps addressing blocks by position.
//
//   Table storage:  blocks = [ freed ... | live ............ ]
//                              ^ base      ^ base + live_index = first live
//   logical block of blocks[i] = base + i; `base` grows when the freed
//   prefix is compacted away.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/block_pool.h"
#include "kernels/paged_kv.h"

namespace fox {

class SequenceBlocks {
 public:
  explicit SequenceBlocks(int32_t num_tables) : tables_(num_tables) {}

  // Makes every table hold blocks for positions [0, num_tokens). Only blocks
  // past each table's last logical block are allocated (evicted blocks are
  // never allocated again). Returns false, allocating nothing, when the pool
  // cannot supply them all.
  bool Reserve(BlockPool& pool, int64_t num_tokens);
  // Blocks Reserve(pool, num_tokens) would take from a pool of this block size.
  int64_t BlocksToReserve(int64_t num_tokens, int32_t block_size) const;
  // The largest num_tokens that Reserve can cover with `free_blocks` more
  // blocks (every table grows alike, so this is exact).
  int64_t ReservableTokens(int64_t free_blocks, int32_t block_size) const;
  // Returns every live block to the pool and empties the tables. Returns the
  // number of blocks freed.
  int64_t ReleaseAll(BlockPool& pool);

  // Views for the forward pass, valid until the next Reserve, FreeFront or
  // ReleaseAll. view.first_block is the logical index of the first live block.
  const std::vector<HeadBlockTable>& Views();

  int32_t num_tables() const { return static_cast<int32_t>(tables_.size()); }
  // Logical index of table `t`'s first live block.
  int64_t first_live_block(int32_t t) const;
  // One past table `t`'s last logical block (blocks ever allocated to it).
  int64_t end_block(int32_t t) const;
  // Pool id of live logical block `logical` of table `t`.
  int32_t pool_block(int32_t t, int64_t logical) const;
  // Frees the first `count` live blocks of table `t` (checked: they exist).
  void FreeFront(BlockPool& pool, int32_t t, int64_t count);

  // Blocks held now, over all tables.
  int64_t num_live_blocks() const;
  // Blocks allocated to this sequence since the last ReleaseAll, evicted
  // ones included.
  int64_t num_blocks_allocated_total() const;

 private:
  struct Table {
    std::vector<int32_t> blocks;  // blocks[live_index ..] are live
    int64_t base = 0;             // logical index of blocks[0]
    int64_t live_index = 0;
  };
  std::vector<Table> tables_;
  std::vector<HeadBlockTable> views_;
};

}  // namespace fox
