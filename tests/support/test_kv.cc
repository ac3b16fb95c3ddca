#include "tests/support/test_kv.h"

#include <algorithm>
#include <numeric>
#include <random>

namespace fox::testing {

TestKv::TestKv(const FoxConfig& config, int64_t max_tokens, int num_seqs, DType kv_dtype,
               int block_size, uint64_t seed) {
  const int64_t heads = int64_t{config.num_layers} * config.num_heads;
  const int64_t blocks_per_head = (max_tokens + block_size - 1) / block_size;
  const int64_t num_blocks = heads * blocks_per_head * num_seqs;
  kv_.num_blocks = static_cast<int32_t>(num_blocks);
  kv_.block_size = block_size;
  kv_.head_dim = config.head_dim;
  kv_.kv_dtype = kv_dtype;
  // Poison the storage: unwritten elements show up as NaN in any result.
  const int64_t elems = num_blocks * kv_.BlockElems();
  k_.assign(elems * DTypeSize(kv_dtype), 0xff);
  v_.assign(elems * DTypeSize(kv_dtype), 0xff);
  anchor_.assign(num_blocks, std::nan(""));
  offset_.assign(num_blocks * block_size, std::nanf(""));
  kv_.k = k_.data();
  kv_.v = v_.data();
  kv_.l_anchor = anchor_.data();
  kv_.l_offset = offset_.data();

  ids_.resize(num_blocks);
  std::iota(ids_.begin(), ids_.end(), 0);
  std::shuffle(ids_.begin(), ids_.end(), std::mt19937_64(seed));
  tables_.resize(num_seqs);
  for (int s = 0; s < num_seqs; ++s) {
    for (int64_t h = 0; h < heads; ++h) {
      HeadBlockTable t;
      t.blocks = ids_.data() + (s * heads + h) * blocks_per_head;
      t.first_block = 0;
      t.num_blocks = static_cast<int32_t>(blocks_per_head);
      tables_[s].push_back(t);
    }
  }
}

}  // namespace fox::testing
