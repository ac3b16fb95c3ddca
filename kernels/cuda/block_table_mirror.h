// The device copy of every running sequence's per-(layer, head) block tables,
// kept up to date by deltas: each step sends only what changed (appended
// blocks, an evicted front advancing a row's first block, sequences added or
// removed), never the whole table. Host C++ only: it keeps the host image of
// the device buffer and produces spans to copy into it; the CUDA side copies
// the payload and scatters it (or one cudaMemcpyAsync per span).
//
// One int32 buffer, `words`:
//   [0, max_seqs * num_tables * 4)   row meta, row = slot * num_tables + table:
//                                    {offset, base, first_block, end_block}
//   [meta end, + index_capacity)     pool block ids; row r's logical block b
//                                    (first_block <= b < end_block) is at
//                                    words[meta end + offset + b - base]
// Rows own regions of the index area with room to grow (doubling), so an
// appended block is one word plus the row's meta; a row that outgrows its
// region moves (amortised O(1) per block); when the area is full, the live
// rows are re-packed and the whole buffer is sent once (full_uploads counts).
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "kernels/paged_kv.h"

namespace fox {

// One sequence of this step and its tables, as SequenceBlocks::Views() gives them.
struct SequenceTables {
  int64_t id = 0;
  const HeadBlockTable* tables = nullptr;  // [num_tables]
};

// Spans to write into `words`: span i covers [offset[i], + length[i]) and
// takes the next length[i] payload values.
struct TableDelta {
  std::vector<int32_t> span_offset;
  std::vector<int32_t> span_length;
  std::vector<int32_t> payload;
  void Clear() { span_offset.clear(), span_length.clear(), payload.clear(); }
};

// Writes `delta` into words (the host twin of the device scatter).
void ApplyTableDelta(const TableDelta& delta, int32_t* words);

class BlockTableMirror {
 public:
  static constexpr int kMetaWords = 4;

  BlockTableMirror(int32_t max_seqs, int32_t num_tables, int32_t index_capacity);

  // Makes the image hold exactly `seqs` (others are removed; their slots free)
  // and appends to `delta` what the device copy needs; after a re-pack, `delta`
  // holds only the whole image. Checks num_seqs <= max_seqs and that the live
  // tables fit in index_capacity.
  void Update(const SequenceTables* seqs, int32_t num_seqs, TableDelta* delta);

  // Slot of a sequence present in the last Update, or -1.
  int32_t slot(int64_t id) const;
  int32_t num_tables() const { return num_tables_; }
  int32_t meta_words() const { return max_seqs_ * num_tables_ * kMetaWords; }
  // The host image of the device buffer.
  const std::vector<int32_t>& words() const { return words_; }
  int64_t full_uploads() const { return full_uploads_; }

 private:
  // Rewrites row `row` from `table` into its region, or a new one (with room to
  // grow unless `tight`); false when the index area has no room left.
  bool PlaceRow(int32_t row, const HeadBlockTable& table, bool tight, TableDelta* delta);
  void SendSpan(int32_t offset, int32_t length, TableDelta* delta) const;
  void Repack(const SequenceTables* seqs, int32_t num_seqs, TableDelta* delta);

  int32_t max_seqs_, num_tables_, index_capacity_;
  std::vector<int32_t> words_;
  std::vector<int32_t> row_capacity_;  // [max_seqs * num_tables]; 0: no region
  int32_t index_used_ = 0;             // bump pointer into the index area
  std::unordered_map<int64_t, int32_t> slot_of_;
  std::vector<int32_t> free_slots_;
  int64_t full_uploads_ = 0;
};

}  // namespace fox
