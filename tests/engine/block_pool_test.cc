#include "engine/block_pool.h"

#include <gtest/gtest.h>

namespace fox {
namespace {

TEST(BlockPoolTest, HandsOutIdsInOrderAndReusesTheLastFreed) {
  BlockPool pool(4, 16, 8, DType::kF32);
  EXPECT_EQ(pool.num_free(), 4);
  EXPECT_EQ(pool.Allocate(), 0);
  EXPECT_EQ(pool.Allocate(), 1);
  EXPECT_EQ(pool.Allocate(), 2);
  EXPECT_EQ(pool.num_used(), 3);
  pool.Free(1);
  EXPECT_TRUE(pool.IsFree(1));
  EXPECT_FALSE(pool.IsFree(0));
  EXPECT_EQ(pool.Allocate(), 1);
  EXPECT_EQ(pool.Allocate(), 3);
  EXPECT_EQ(pool.Allocate(), std::nullopt);  // dry is a value
  EXPECT_EQ(pool.num_free(), 0);
  for (int32_t b : {3, 0, 2, 1}) pool.Free(b);
  EXPECT_EQ(pool.num_free(), 4);
  EXPECT_EQ(pool.Allocate(), 1);
}

TEST(BlockPoolDeathTest, DoubleFreeAborts) {
  BlockPool pool(2, 4, 2, DType::kF32);
  const int32_t b = *pool.Allocate();
  pool.Free(b);
  EXPECT_DEATH(pool.Free(b), "double free of KV block 0");
  EXPECT_DEATH(pool.Free(7), "KV block 7");
}

TEST(BlockPoolTest, BlocksForBytesCountsKvAndL) {
  // f32, 16 x 64: K and V 4096 bytes each, anchor 8, offsets 64.
  EXPECT_EQ(BlockPool::BlocksForBytes(8264, 16, 64, DType::kF32), 1);
  EXPECT_EQ(BlockPool::BlocksForBytes(3 * 8264 + 8263, 16, 64, DType::kF32), 3);
  EXPECT_EQ(BlockPool::BlocksForBytes(8263, 16, 64, DType::kF32), 0);
  EXPECT_EQ(BlockPool::BlocksForBytes(4168 * 10, 16, 64, DType::kBF16), 10);
}

}  // namespace
}  // namespace fox
