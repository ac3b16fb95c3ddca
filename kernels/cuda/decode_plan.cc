#include "kernels/cuda/decode_plan.h"

#include <algorithm>

#include "kernels/check.h"

namespace fox {

DecodePlan PlanDecode(const DecodeRange* ranges, int32_t num_seqs, int32_t num_heads,
                      const DecodePlanOptions& options) {
  FOX_CHECK(options.target_items >= 1, "target_items >= 1");
  FOX_CHECK(options.min_blocks_per_item >= 1, "min_blocks_per_item >= 1");
  const int32_t num_ranges = num_seqs * num_heads;
  int64_t total = 0;
  for (int32_t r = 0; r < num_ranges; ++r) {
    FOX_CHECK(ranges[r].num_blocks >= 0 && ranges[r].first_block >= 0, "valid range");
    total += ranges[r].num_blocks;
  }
  const int64_t even = (total + options.target_items - 1) / options.target_items;
  const int32_t chunk = static_cast<int32_t>(std::max<int64_t>(even, options.min_blocks_per_item));

  DecodePlan plan;
  plan.max_blocks_per_item = chunk;
  plan.merge_indptr.reserve(num_ranges + 1);
  plan.merge_indptr.push_back(0);
  for (int32_t r = 0; r < num_ranges; ++r) {
    const int32_t n = ranges[r].num_blocks;
    const int32_t pieces = (n + chunk - 1) / chunk;
    // Split n into `pieces` lengths differing by at most one, longer first.
    int32_t first = ranges[r].first_block;
    for (int32_t p = 0; p < pieces; ++p) {
      const int32_t len = n / pieces + (p < n % pieces ? 1 : 0);
      plan.item_seq.push_back(r / num_heads);
      plan.item_head.push_back(r % num_heads);
      plan.item_first_block.push_back(first);
      plan.item_num_blocks.push_back(len);
      first += len;
    }
    plan.merge_indptr.push_back(plan.num_items());
  }
  return plan;
}

}  // namespace fox
