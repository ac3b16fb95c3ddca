#include "engine/sequence_blocks.h"

#include <algorithm>

#include "kernels/check.h"

namespace fox {
namespace {

// A freed prefix is dropped from storage once it is this long and at least
// half the vector, so compaction stays amortised O(1) per freed block.
constexpr int64_t kCompactMinFreed = 64;

}  // namespace

int64_t SequenceBlocks::BlocksToReserve(int64_t num_tokens, int32_t block_size) const {
  const int64_t needed_end = (num_tokens + block_size - 1) / block_size;
  int64_t missing = 0;
  for (int32_t t = 0; t < num_tables(); ++t) {
    missing += std::max<int64_t>(0, needed_end - end_block(t));
  }
  return missing;
}

int64_t SequenceBlocks::ReservableTokens(int64_t free_blocks, int32_t block_size) const {
  if (num_tables() == 0) return 0;
  // Reserve keeps every table's end equal: it grows all of them or none.
  return (end_block(0) + free_blocks / num_tables()) * block_size;
}

bool SequenceBlocks::Reserve(BlockPool& pool, int64_t num_tokens) {
  const int64_t bs = pool.view().block_size;
  const int64_t needed_end = (num_tokens + bs - 1) / bs;
  if (BlocksToReserve(num_tokens, pool.view().block_size) > pool.num_free()) return false;
  for (int32_t t = 0; t < num_tables(); ++t) {
    while (end_block(t) < needed_end) tables_[t].blocks.push_back(*pool.Allocate());
  }
  return true;
}

int64_t SequenceBlocks::ReleaseAll(BlockPool& pool) {
  int64_t freed = 0;
  for (Table& t : tables_) {
    for (size_t i = t.live_index; i < t.blocks.size(); ++i) pool.Free(t.blocks[i]);
    freed += static_cast<int64_t>(t.blocks.size()) - t.live_index;
    t = Table();
  }
  return freed;
}

const std::vector<HeadBlockTable>& SequenceBlocks::Views() {
  views_.resize(tables_.size());
  for (size_t i = 0; i < tables_.size(); ++i) {
    const Table& t = tables_[i];
    views_[i].blocks = t.blocks.data() + t.live_index;
    views_[i].first_block = static_cast<int32_t>(t.base + t.live_index);
    views_[i].num_blocks = static_cast<int32_t>(t.blocks.size() - t.live_index);
  }
  return views_;
}

int64_t SequenceBlocks::first_live_block(int32_t t) const {
  return tables_[t].base + tables_[t].live_index;
}

int64_t SequenceBlocks::end_block(int32_t t) const {
  return tables_[t].base + static_cast<int64_t>(tables_[t].blocks.size());
}

int32_t SequenceBlocks::pool_block(int32_t t, int64_t logical) const {
  const Table& table = tables_[t];
  FOX_CHECK(logical >= first_live_block(t) && logical < end_block(t),
            "pool_block: logical block is not live");
  return table.blocks[logical - table.base];
}

void SequenceBlocks::FreeFront(BlockPool& pool, int32_t t, int64_t count) {
  Table& table = tables_[t];
  FOX_CHECK(count >= 0 && table.live_index + count <= static_cast<int64_t>(table.blocks.size()),
            "FreeFront: more blocks than the table holds");
  for (int64_t i = 0; i < count; ++i) pool.Free(table.blocks[table.live_index++]);
  const int64_t size = static_cast<int64_t>(table.blocks.size());
  if (table.live_index >= kCompactMinFreed && 2 * table.live_index >= size) {
    table.blocks.erase(table.blocks.begin(), table.blocks.begin() + table.live_index);
    table.base += table.live_index;
    table.live_index = 0;
  }
}

int64_t SequenceBlocks::num_live_blocks() const {
  int64_t n = 0;
  for (const Table& t : tables_) n += static_cast<int64_t>(t.blocks.size()) - t.live_index;
  return n;
}

int64_t SequenceBlocks::num_blocks_allocated_total() const {
  int64_t n = 0;
  for (int32_t t = 0; t < num_tables(); ++t) n += end_block(t);
  return n;
}

}  // namespace fox
