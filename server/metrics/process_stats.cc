#include "server/metrics/process_stats.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace fox {
namespace {

bool ReadFile(const char* path, std::string* out) {
  std::ifstream in(path);
  if (!in) return false;
  std::stringstream text;
  text << in.rdbuf();
  *out = text.str();
  return true;
}

// btime from /proc/stat: the boot time in seconds since the epoch.
bool BootTime(double* out) {
  std::string text;
  if (!ReadFile("/proc/stat", &text)) return false;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.substr(0, 6) == "btime ") {
      int64_t btime = 0;
      if (!absl::SimpleAtoi(line.substr(6), &btime)) return false;
      *out = static_cast<double>(btime);
      return true;
    }
  }
  return false;
}

}  // namespace

absl::StatusOr<ProcessStats> ReadProcessStats() {
  std::string stat;
  if (!ReadFile("/proc/self/stat", &stat)) {
    return absl::UnavailableError("cannot read /proc/self/stat");
  }
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so
  // the fields are counted from the last ')'.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return absl::UnavailableError("malformed /proc/self/stat");
  const std::vector<absl::string_view> f =
      absl::StrSplit(absl::string_view(stat).substr(close + 2), ' ', absl::SkipEmpty());
  // After the comm, field k of proc(5) is f[k - 3]: utime 14, stime 15,
  // starttime 22, vsize 23, rss 24.
  if (f.size() < 22) return absl::UnavailableError("short /proc/self/stat");
  int64_t utime = 0, stime = 0, starttime = 0, vsize = 0, rss_pages = 0;
  if (!absl::SimpleAtoi(f[11], &utime) || !absl::SimpleAtoi(f[12], &stime) ||
      !absl::SimpleAtoi(f[19], &starttime) || !absl::SimpleAtoi(f[20], &vsize) ||
      !absl::SimpleAtoi(f[21], &rss_pages)) {
    return absl::UnavailableError("malformed /proc/self/stat");
  }
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  ProcessStats s;
  s.cpu_seconds = static_cast<double>(utime + stime) / ticks;
  s.virtual_memory_bytes = vsize;
  s.resident_memory_bytes = rss_pages * sysconf(_SC_PAGESIZE);
  double boot = 0;
  if (BootTime(&boot)) s.start_time_seconds = boot + static_cast<double>(starttime) / ticks;

  if (DIR* dir = opendir("/proc/self/fd")) {
    int64_t n = 0;
    while (const dirent* entry = readdir(dir)) {
      if (entry->d_name[0] != '.') ++n;
    }
    closedir(dir);
    s.open_fds = n - 1;  // not the descriptor of the listing itself
  }
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    s.max_fds = limit.rlim_cur == RLIM_INFINITY ? -1 : static_cast<int64_t>(limit.rlim_cur);
  }
  return s;
}

}  // namespace fox
