#include "engine/sequence_blocks.h"

#include <gtest/gtest.h>

#include <vector>

namespace fox {
namespace {

std::vector<int32_t> Ids(const HeadBlockTable& view) {
  return std::vector<int32_t>(view.blocks, view.blocks + view.num_blocks);
}

TEST(SequenceBlocksTest, ScriptedReserveFreeFrontRelease) {
  BlockPool pool(10, 4, 2, DType::kF32);
  SequenceBlocks seq(2);
  ASSERT_TRUE(seq.Reserve(pool, 5));  // 2 blocks per table
  EXPECT_EQ(Ids(seq.Views()[0]), (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(Ids(seq.Views()[1]), (std::vector<int32_t>{2, 3}));
  ASSERT_TRUE(seq.Reserve(pool, 8));  // still 2 blocks: nothing new
  EXPECT_EQ(pool.num_free(), 6);
  ASSERT_TRUE(seq.Reserve(pool, 9));
  EXPECT_EQ(pool.num_free(), 4);

  seq.FreeFront(pool, 0, 2);  // frees 0 then 1: 1 is handed out next
  EXPECT_EQ(pool.num_free(), 6);
  EXPECT_TRUE(pool.IsFree(0));
  EXPECT_TRUE(pool.IsFree(1));
  EXPECT_EQ(seq.first_live_block(0), 2);
  EXPECT_EQ(seq.Views()[0].first_block, 2);
  EXPECT_EQ(Ids(seq.Views()[0]), (std::vector<int32_t>{4}));

  // New blocks go after logical block 2; evicted logical blocks stay gone.
  ASSERT_TRUE(seq.Reserve(pool, 13));
  EXPECT_EQ(seq.Views()[0].first_block, 2);
  EXPECT_EQ(Ids(seq.Views()[0]), (std::vector<int32_t>{4, 1}));
  EXPECT_EQ(seq.pool_block(0, 3), 1);
  EXPECT_EQ(Ids(seq.Views()[1]), (std::vector<int32_t>{2, 3, 5, 0}));
  EXPECT_EQ(seq.Views()[1].first_block, 0);
  EXPECT_EQ(seq.end_block(0), 4);

  EXPECT_FALSE(seq.Reserve(pool, 100));  // all or nothing
  EXPECT_EQ(pool.num_free(), 4);
  EXPECT_EQ(seq.num_live_blocks(), 6);
  EXPECT_EQ(seq.num_blocks_allocated_total(), 8);

  EXPECT_EQ(seq.ReleaseAll(pool), 6);
  EXPECT_EQ(pool.num_free(), 10);
  EXPECT_EQ(seq.num_live_blocks(), 0);
  EXPECT_EQ(seq.num_blocks_allocated_total(), 0);
  ASSERT_TRUE(seq.Reserve(pool, 1));  // a released sequence starts again at logical 0
  EXPECT_EQ(seq.Views()[0].first_block, 0);
  EXPECT_EQ(seq.Views()[0].num_blocks, 1);
  EXPECT_EQ(seq.ReleaseAll(pool), 2);
  EXPECT_EQ(pool.num_free(), 10);
}

TEST(SequenceBlocksTest, LongEvictionKeepsLogicalNumberingAcrossCompaction) {
  BlockPool pool(300, 1, 2, DType::kF32);
  SequenceBlocks seq(1);
  ASSERT_TRUE(seq.Reserve(pool, 200));  // logical i -> pool id i
  for (int64_t i = 0; i < 150; ++i) {
    seq.FreeFront(pool, 0, 1);
    const HeadBlockTable view = seq.Views()[0];
    ASSERT_EQ(view.first_block, i + 1);
    ASSERT_EQ(view.num_blocks, 199 - i);
    ASSERT_EQ(view.blocks[0], i + 1);
    ASSERT_EQ(view.blocks[view.num_blocks - 1], 199);
  }
  EXPECT_EQ(pool.num_free(), 250);
  // The free stack now has 149 on top (last freed), then 148, ...
  ASSERT_TRUE(seq.Reserve(pool, 203));
  EXPECT_EQ(seq.pool_block(0, 150), 150);
  EXPECT_EQ(seq.pool_block(0, 200), 149);
  EXPECT_EQ(seq.pool_block(0, 202), 147);
  EXPECT_EQ(seq.Views()[0].first_block, 150);
  EXPECT_EQ(seq.num_live_blocks(), 53);
  EXPECT_EQ(seq.num_blocks_allocated_total(), 203);
  EXPECT_EQ(seq.ReleaseAll(pool), 53);
  EXPECT_EQ(pool.num_free(), 300);
}

TEST(SequenceBlocksDeathTest, FreeingMoreThanLiveAborts) {
  BlockPool pool(4, 4, 2, DType::kF32);
  SequenceBlocks seq(1);
  ASSERT_TRUE(seq.Reserve(pool, 8));
  EXPECT_DEATH(seq.FreeFront(pool, 0, 3), "more blocks than the table holds");
}

}  // namespace
}  // namespace fox
