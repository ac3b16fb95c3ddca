#include "engine/sequence_blocks.h"

namespace fox {

bool SequenceBlocks::Reserve(BlockPool& pool, int64_t num_tokens) {
  const int64_t bs = pool.view().block_size;
  const int64_t needed_per_table = (num_tokens + bs - 1) / bs;
  int64_t missing = 0;
  for (const Table& t : tables_) {
    missing += std::max<int64_t>(0, needed_per_table - static_cast<int64_t>(t.blocks.size()));
  }
  if (missing > pool.num_free()) return false;
  for (Table& t : tables_) {
    while (static_cast<int64_t>(t.blocks.size()) < needed_per_table) {
      t.blocks.push_back(*pool.Allocate());
    }
  }
  return true;
}

void SequenceBlocks::ReleaseAll(BlockPool& pool) {
  for (Table& t : tables_) {
    for (size_t i = t.first_live_index; i < t.blocks.size(); ++i) pool.Free(t.blocks[i]);
    t.blocks.clear();
    t.first_live_index = 0;
  }
}

const std::vector<HeadBlockTable>& SequenceBlocks::Views() {
  views_.resize(tables_.size());
  for (size_t i = 0; i < tables_.size(); ++i) {
    const Table& t = tables_[i];
    views_[i].blocks = t.blocks.data() + t.first_live_index;
    views_[i].first_block = t.first_live_index;
    views_[i].num_blocks = static_cast<int32_t>(t.blocks.size()) - t.first_live_index;
  }
  return views_;
}

int64_t SequenceBlocks::num_allocated() const {
  int64_t n = 0;
  for (const Table& t : tables_) n += t.blocks.size() - t.first_live_index;
  return n;
}

}  // namespace fox
