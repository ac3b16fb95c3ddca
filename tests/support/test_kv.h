// A KV pool for model tests: per (sequence, layer, head) tables over block ids
// drawn in a shuffled order, so that any indexing mistake reads a wrong block.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/paged_kv.h"
#include "models/config.h"

namespace fox::testing {

class TestKv {
 public:
  TestKv(const FoxConfig& config, int64_t max_tokens, int num_seqs, DType kv_dtype,
         int block_size = 16, uint64_t seed = 7);

  const PagedKv& kv() const { return kv_; }
  // [layers * heads] tables of sequence `seq`.
  const HeadBlockTable* tables(int seq) const { return tables_[seq].data(); }

 private:
  PagedKv kv_;
  std::vector<uint8_t> k_, v_;
  std::vector<double> anchor_;
  std::vector<float> offset_;
  std::vector<int32_t> ids_;
  std::vector<std::vector<HeadBlockTable>> tables_;
};

}  // namespace fox::testing
