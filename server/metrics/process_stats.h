// What Prometheus client libraries export as process_* metrics, read from
// /proc for this process: resident and virtual memory, open and maximum file
// descriptors, CPU seconds, and the start time.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"

namespace fox {

struct ProcessStats {
  double cpu_seconds = 0;          // user + system
  double start_time_seconds = 0;   // since the Unix epoch
  int64_t resident_memory_bytes = 0;
  int64_t virtual_memory_bytes = 0;
  int64_t open_fds = 0;
  int64_t max_fds = 0;  // the soft RLIMIT_NOFILE
};

// Unavailable where /proc cannot be read (not Linux, or mounted elsewhere).
absl::StatusOr<ProcessStats> ReadProcessStats();

}  // namespace fox
