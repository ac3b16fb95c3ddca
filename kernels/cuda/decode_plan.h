// Decode-attention work planning on the host ("plan on the host, fixed
// launch", as FlashInfer does): per (sequence, head) live key-block range in,
// a flat list of equal-sized work items (one thread block each) out, with
// long ranges split into chunks (flash-decoding split-K) whose partial
// softmax states a merge step combines. Host C++ only, so it is tested on
// every machine; the CUDA decode kernel consumes the arrays as they are.
//
//   range r = seq * num_heads + head:  logical blocks [first, first + n)
//   items of range r: merge_indptr[r] .. merge_indptr[r + 1]   (contiguous)
//   item i covers [item_first_block[i], + item_num_blocks[i]) of range
//   item_range[i] and writes partial slot i; merge r combines its slots.
#pragma once

#include <cstdint>
#include <vector>

namespace fox {

// Live key blocks of one (sequence, head) after ACP eviction.
struct DecodeRange {
  int32_t first_block = 0;  // logical index of the first live block
  int32_t num_blocks = 0;   // 0: nothing to attend (the merge writes zeros)
};

struct DecodePlanOptions {
  int32_t target_items = 132 * 2;   // e.g. SM count x waves
  int32_t min_blocks_per_item = 4;  // below this, a split costs more than it saves
};

// Plain arrays, ready to copy to the device as they are.
struct DecodePlan {
  int32_t max_blocks_per_item = 0;        // no item is longer
  std::vector<int32_t> item_seq;          // [num_items]
  std::vector<int32_t> item_head;         // [num_items]
  std::vector<int32_t> item_first_block;  // [num_items] logical block
  std::vector<int32_t> item_num_blocks;   // [num_items] >= 1
  std::vector<int32_t> merge_indptr;      // [num_seqs * num_heads + 1] into items

  int32_t num_items() const { return static_cast<int32_t>(item_seq.size()); }
};

// Chunk length: ceil(total blocks / target_items), at least
// min_blocks_per_item. A range of n blocks becomes ceil(n / chunk) items whose
// lengths differ by at most one, so no item exceeds the chunk and the number
// of items is at most target_items + (non-empty ranges).
DecodePlan PlanDecode(const DecodeRange* ranges,  // [num_seqs * num_heads]
                      int32_t num_seqs, int32_t num_heads, const DecodePlanOptions& options);

}  // namespace fox
