// The KV cache memory budget: parses `--kv-cache-memory` and turns it into a
// block count for the pool's geometry.
//
// Accepted values:
//   "2000000000"             bytes
//   "512MiB", "2GB", "1.5GiB" bytes with a unit: B, KB, MB, GB, TB (powers of
//                            1000) or KiB, MiB, GiB, TiB (powers of 1024);
//                            units are case-insensitive
//   "0.5", "1"               a fraction in (0, 1] of MemAvailable
//                            (/proc/meminfo) at the time of parsing
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kernels/dtype.h"

namespace fox {

// Resolves a --kv-cache-memory value to bytes; a fraction is taken of
// `available_bytes`. InvalidArgument names the flag and the value.
absl::StatusOr<int64_t> ParseKvCacheMemory(absl::string_view value, int64_t available_bytes);

// As above, reading MemAvailable only when the value is a fraction.
absl::StatusOr<int64_t> ParseKvCacheMemory(absl::string_view value);

// MemAvailable in bytes from the text of /proc/meminfo.
absl::StatusOr<int64_t> ParseMemAvailable(absl::string_view meminfo_text);
// MemAvailable of this machine now.
absl::StatusOr<int64_t> AvailableMemoryBytes();

// Pool blocks that fit in `budget_bytes` (BlockPool::BlocksForBytes). Zero
// blocks is InvalidArgument saying the budget is too small and how much one
// block needs.
absl::StatusOr<int32_t> KvBlocksForBudget(int64_t budget_bytes, int32_t block_size,
                                          int32_t head_dim, DType kv_dtype);

}  // namespace fox
