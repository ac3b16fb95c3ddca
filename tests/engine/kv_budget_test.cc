#include "engine/kv_budget.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/match.h"

namespace fox {
namespace {

constexpr int64_t kAvailable = 8'000'000'000;

TEST(KvBudgetTest, BytesAndUnits) {
  EXPECT_EQ(*ParseKvCacheMemory("2000000000", kAvailable), 2'000'000'000);
  EXPECT_EQ(*ParseKvCacheMemory("512MiB", kAvailable), 512LL << 20);
  EXPECT_EQ(*ParseKvCacheMemory("2GB", kAvailable), 2'000'000'000);
  EXPECT_EQ(*ParseKvCacheMemory("1.5GiB", kAvailable), 3LL << 29);
  EXPECT_EQ(*ParseKvCacheMemory("64kib", kAvailable), 65536);
  EXPECT_EQ(*ParseKvCacheMemory("3 KB", kAvailable), 3000);
  EXPECT_EQ(*ParseKvCacheMemory("1TiB", kAvailable), 1LL << 40);
  EXPECT_EQ(*ParseKvCacheMemory("100B", kAvailable), 100);
}

TEST(KvBudgetTest, FractionOfAvailableMemory) {
  EXPECT_EQ(*ParseKvCacheMemory("0.5", kAvailable), 4'000'000'000);
  EXPECT_EQ(*ParseKvCacheMemory("0.25", 1000), 250);
  EXPECT_EQ(*ParseKvCacheMemory("1", kAvailable), kAvailable);
  EXPECT_EQ(*ParseKvCacheMemory("1.0", kAvailable), kAvailable);
  EXPECT_EQ(*ParseKvCacheMemory(".1", 1000), 100);
}

TEST(KvBudgetTest, FractionReadsMemAvailableOfThisMachine) {
  absl::StatusOr<int64_t> available = AvailableMemoryBytes();
  ASSERT_TRUE(available.ok()) << available.status();
  ASSERT_GT(*available, 0);
  absl::StatusOr<int64_t> half = ParseKvCacheMemory("0.5");
  ASSERT_TRUE(half.ok()) << half.status();
  // Other processes move MemAvailable between the two reads; allow for it.
  EXPECT_GT(*half, *available / 4);
  EXPECT_LT(*half, *available * 3 / 4);
  EXPECT_EQ(*ParseKvCacheMemory("2GiB"), 2LL << 30);
}

TEST(KvBudgetTest, InvalidValuesNameTheFlagAndTheValue) {
  for (const std::string value :
       {"", "abc", "-1", "0", "0.0", "1.5", "2e9", "12XB", "GiB", "1..2", "0GiB", "1.5 G",
        "99999999999999999999", "1e400", "-0.5", "0x10"}) {
    absl::StatusOr<int64_t> bytes = ParseKvCacheMemory(value, kAvailable);
    ASSERT_FALSE(bytes.ok()) << "'" << value << "' gave " << *bytes;
    EXPECT_EQ(bytes.status().code(), absl::StatusCode::kInvalidArgument) << value;
    EXPECT_TRUE(absl::StrContains(bytes.status().message(), "--kv-cache-memory")) << bytes.status();
    EXPECT_TRUE(absl::StrContains(bytes.status().message(), "\"" + value + "\"")) << bytes.status();
  }
}

TEST(KvBudgetTest, ParsesMemInfo) {
  const std::string text =
      "MemTotal:       16384000 kB\nMemFree:         1000000 kB\n"
      "MemAvailable:    8000000 kB\nBuffers:          12 kB\n";
  EXPECT_EQ(*ParseMemAvailable(text), 8'000'000LL * 1024);
  EXPECT_EQ(ParseMemAvailable("MemTotal: 1 kB\n").status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(ParseMemAvailable("MemAvailable: lots\n").ok());
}

TEST(KvBudgetTest, BudgetToBlocks) {
  // f32, 16 x 64: 8264 bytes a block; bf16: 4168.
  EXPECT_EQ(*KvBlocksForBudget(8264 * 100 + 5, 16, 64, DType::kF32), 100);
  EXPECT_EQ(*KvBlocksForBudget(4168 * 7, 16, 64, DType::kBF16), 7);
  EXPECT_EQ(*KvBlocksForBudget(*ParseKvCacheMemory("1GiB", 0), 16, 64, DType::kF32),
            (1LL << 30) / 8264);
  absl::StatusOr<int32_t> none = KvBlocksForBudget(8263, 16, 64, DType::kF32);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(none.status().message(), "too small")) << none.status();
  EXPECT_TRUE(absl::StrContains(none.status().message(), "8264")) << none.status();
  EXPECT_FALSE(KvBlocksForBudget(int64_t{1} << 62, 1, 1, DType::kBF16).ok());
}

}  // namespace
}  // namespace fox
