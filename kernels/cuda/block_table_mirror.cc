#include "kernels/cuda/block_table_mirror.h"

#include <algorithm>
#include <unordered_set>

#include "kernels/check.h"

namespace fox {
namespace {

constexpr int32_t kMinRowCapacity = 8;
enum Meta { kOffset = 0, kBase = 1, kFirst = 2, kEnd = 3 };

}  // namespace

void ApplyTableDelta(const TableDelta& delta, int32_t* words) {
  size_t next = 0;
  for (size_t i = 0; i < delta.span_offset.size(); ++i) {
    std::copy_n(delta.payload.begin() + next, delta.span_length[i], words + delta.span_offset[i]);
    next += delta.span_length[i];
  }
}

BlockTableMirror::BlockTableMirror(int32_t max_seqs, int32_t num_tables, int32_t index_capacity)
    : max_seqs_(max_seqs),
      num_tables_(num_tables),
      index_capacity_(index_capacity),
      words_(meta_words() + int64_t{index_capacity}, 0),
      row_capacity_(int64_t{max_seqs} * num_tables, 0) {
  for (int32_t s = max_seqs - 1; s >= 0; --s) free_slots_.push_back(s);
}

int32_t BlockTableMirror::slot(int64_t id) const {
  auto it = slot_of_.find(id);
  return it == slot_of_.end() ? -1 : it->second;
}

void BlockTableMirror::SendSpan(int32_t offset, int32_t length, TableDelta* delta) const {
  if (length == 0) return;
  delta->span_offset.push_back(offset);
  delta->span_length.push_back(length);
  delta->payload.insert(delta->payload.end(), words_.begin() + offset,
                        words_.begin() + offset + length);
}

bool BlockTableMirror::PlaceRow(int32_t row, const HeadBlockTable& table, bool tight,
                                TableDelta* delta) {
  int32_t* meta = &words_[int64_t{row} * kMetaWords];
  const int32_t capacity =
      tight ? table.num_blocks : std::max(kMinRowCapacity, 2 * table.num_blocks);
  if (row_capacity_[row] >= table.num_blocks) {
    // The row's own region holds the new table: rewrite it in place.
  } else {
    if (index_used_ + capacity > index_capacity_) return false;
    meta[kOffset] = index_used_;
    row_capacity_[row] = capacity;
    index_used_ += capacity;
  }
  meta[kBase] = table.first_block;
  meta[kFirst] = table.first_block;
  meta[kEnd] = table.first_block + table.num_blocks;
  const int32_t at = meta_words() + meta[kOffset];
  std::copy_n(table.blocks, table.num_blocks, words_.begin() + at);
  SendSpan(at, table.num_blocks, delta);
  SendSpan(row * kMetaWords, kMetaWords, delta);
  return true;
}

void BlockTableMirror::Update(const SequenceTables* seqs, int32_t num_seqs, TableDelta* delta) {
  FOX_CHECK(num_seqs <= max_seqs_, "num_seqs <= max_seqs");
  // Removed sequences: their rows read as empty, their slots are free.
  std::unordered_set<int64_t> present;
  for (int32_t i = 0; i < num_seqs; ++i) present.insert(seqs[i].id);
  for (auto it = slot_of_.begin(); it != slot_of_.end();) {
    if (present.count(it->first) != 0) {
      ++it;
      continue;
    }
    const int32_t row0 = it->second * num_tables_;
    for (int32_t t = 0; t < num_tables_; ++t) {
      int32_t* meta = &words_[int64_t{row0 + t} * kMetaWords];
      meta[kFirst] = meta[kEnd] = meta[kBase];
    }
    SendSpan(row0 * kMetaWords, num_tables_ * kMetaWords, delta);
    free_slots_.push_back(it->second);
    it = slot_of_.erase(it);
  }

  std::vector<bool> added(num_seqs);
  for (int32_t i = 0; i < num_seqs; ++i) {
    auto [it, inserted] = slot_of_.try_emplace(seqs[i].id, -1);
    added[i] = inserted;
    if (inserted) {
      it->second = free_slots_.back();
      free_slots_.pop_back();
    }
  }
  for (int32_t i = 0; i < num_seqs; ++i) {
    const int32_t slot = slot_of_[seqs[i].id];
    for (int32_t t = 0; t < num_tables_; ++t) {
      const int32_t row = slot * num_tables_ + t;
      const HeadBlockTable& table = seqs[i].tables[t];
      int32_t* meta = &words_[int64_t{row} * kMetaWords];
      const int32_t end = table.first_block + table.num_blocks;
      // Incremental when the row only lost a front and gained a tail: the
      // blocks both versions hold must agree (checked; O(live) host work).
      bool incremental = !added[i] && table.first_block >= meta[kFirst] && end >= meta[kEnd] &&
                         end - meta[kBase] <= row_capacity_[row];
      const int32_t at = meta_words() + meta[kOffset] - meta[kBase];
      for (int32_t b = table.first_block; incremental && b < meta[kEnd]; ++b) {
        incremental = words_[at + b] == table.blocks[b - table.first_block];
      }
      if (incremental) {
        if (table.first_block == meta[kFirst] && end == meta[kEnd]) continue;
        const int32_t old_end = std::max(meta[kEnd], table.first_block);
        std::copy(table.blocks + (old_end - table.first_block), table.blocks + table.num_blocks,
                  words_.begin() + at + old_end);
        SendSpan(at + old_end, end - old_end, delta);
        meta[kFirst] = table.first_block;
        meta[kEnd] = end;
        SendSpan(row * kMetaWords + kFirst, 2, delta);
      } else if (!PlaceRow(row, table, /*tight=*/false, delta)) {
        // The index area is full of dead regions: re-pack everything once.
        Repack(seqs, num_seqs, delta);
        return;
      }
    }
  }
}

void BlockTableMirror::Repack(const SequenceTables* seqs, int32_t num_seqs, TableDelta* delta) {
  ++full_uploads_;
  std::fill(words_.begin(), words_.end(), 0);
  std::fill(row_capacity_.begin(), row_capacity_.end(), 0);
  index_used_ = 0;
  // Rows get room to grow when everything fits with it, else exactly their size.
  int64_t roomy = 0;
  for (int32_t i = 0; i < num_seqs; ++i) {
    for (int32_t t = 0; t < num_tables_; ++t) {
      roomy += std::max(kMinRowCapacity, 2 * seqs[i].tables[t].num_blocks);
    }
  }
  const bool tight = roomy > index_capacity_;
  TableDelta ignored;
  for (int32_t i = 0; i < num_seqs; ++i) {
    const int32_t row0 = slot_of_.at(seqs[i].id) * num_tables_;
    for (int32_t t = 0; t < num_tables_; ++t) {
      FOX_CHECK(PlaceRow(row0 + t, seqs[i].tables[t], tight, &ignored),
                "the live tables fit in index_capacity");
    }
  }
  delta->Clear();  // the whole image supersedes anything sent before
  SendSpan(0, static_cast<int32_t>(words_.size()), delta);
}

}  // namespace fox
