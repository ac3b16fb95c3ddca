#include "kernels/paged_kv.h"

#include <cassert>

namespace fox {
namespace {

int32_t PoolBlock(const PagedKv& kv, const HeadBlockTable& table, int64_t pos) {
  const int64_t logical = pos / kv.block_size;
  assert(logical >= table.first_block && logical < table.first_block + table.num_blocks);
  const int32_t block = table.blocks[logical - table.first_block];
  assert(block >= 0 && block < kv.num_blocks);
  return block;
}

}  // namespace

void WriteKvToken(const PagedKv& kv, const HeadBlockTable& table, int64_t pos, const float* k,
                  const float* v, double l) {
  const int32_t block = PoolBlock(kv, table, pos);
  const int32_t slot = static_cast<int32_t>(pos % kv.block_size);
  const int64_t elem = block * kv.BlockElems() + int64_t{slot} * kv.head_dim;
  const int64_t byte = elem * DTypeSize(kv.kv_dtype);
  ConvertFromF32(k, kv.head_dim, kv.kv_dtype, static_cast<char*>(kv.k) + byte);
  ConvertFromF32(v, kv.head_dim, kv.kv_dtype, static_cast<char*>(kv.v) + byte);
  if (slot == 0) kv.l_anchor[block] = l;
  kv.l_offset[int64_t{block} * kv.block_size + slot] = static_cast<float>(l - kv.l_anchor[block]);
}

void ReadKvToken(const PagedKv& kv, const HeadBlockTable& table, int64_t pos, float* k, float* v,
                 double* l) {
  const int32_t block = PoolBlock(kv, table, pos);
  const int32_t slot = static_cast<int32_t>(pos % kv.block_size);
  const int64_t elem = block * kv.BlockElems() + int64_t{slot} * kv.head_dim;
  const int64_t byte = elem * DTypeSize(kv.kv_dtype);
  ConvertToF32(static_cast<const char*>(kv.k) + byte, kv.kv_dtype, kv.head_dim, k);
  ConvertToF32(static_cast<const char*>(kv.v) + byte, kv.kv_dtype, kv.head_dim, v);
  *l = kv.l_anchor[block] + kv.l_offset[int64_t{block} * kv.block_size + slot];
}

}  // namespace fox
