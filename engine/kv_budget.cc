#include "engine/kv_budget.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "engine/block_pool.h"

namespace fox {
namespace {

constexpr absl::string_view kFlag = "--kv-cache-memory";

absl::Status Invalid(absl::string_view value, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(kFlag, ": invalid value \"", value, "\": ", why));
}

// Bytes per unit, or 0 for an unknown unit. "" means no unit.
double UnitBytes(absl::string_view unit) {
  const std::string u = absl::AsciiStrToLower(unit);
  if (u == "b") return 1.0;
  if (u == "kb") return 1e3;
  if (u == "mb") return 1e6;
  if (u == "gb") return 1e9;
  if (u == "tb") return 1e12;
  if (u == "kib") return 1024.0;
  if (u == "mib") return 1024.0 * 1024;
  if (u == "gib") return 1024.0 * 1024 * 1024;
  if (u == "tib") return 1024.0 * 1024 * 1024 * 1024;
  return 0.0;
}

}  // namespace

absl::StatusOr<int64_t> ParseKvCacheMemory(absl::string_view value, int64_t available_bytes) {
  // number: digits, optionally '.' and more digits; then an optional unit.
  size_t i = 0;
  size_t num_digits = 0;
  while (i < value.size() && std::isdigit(static_cast<unsigned char>(value[i]))) ++i, ++num_digits;
  const bool has_point = i < value.size() && value[i] == '.';
  if (has_point) {
    ++i;
    while (i < value.size() && std::isdigit(static_cast<unsigned char>(value[i]))) {
      ++i, ++num_digits;
    }
  }
  if (num_digits == 0)
    return Invalid(value,
                   "expected a number of bytes, a size such as 512MiB, or a fraction in (0, 1]");
  const absl::string_view number = value.substr(0, i);
  const absl::string_view unit = absl::StripLeadingAsciiWhitespace(value.substr(i));

  double amount = 0.0;
  {
    std::istringstream in{std::string(number)};
    in.imbue(std::locale::classic());
    in >> amount;
  }
  if (!std::isfinite(amount)) return Invalid(value, "the number is out of range");

  if (unit.empty()) {
    if (amount <= 1.0) {
      if (amount <= 0.0) return Invalid(value, "the budget must be positive");
      if (available_bytes <= 0) return Invalid(value, "no available memory to take a fraction of");
      return static_cast<int64_t>(std::floor(amount * static_cast<double>(available_bytes)));
    }
    if (has_point) {
      return Invalid(value, "a plain number above 1 is bytes and must be whole (or add a unit)");
    }
    int64_t bytes = 0;
    const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), bytes);
    if (ec != std::errc() || end != number.data() + number.size()) {
      return Invalid(value, "the number of bytes is out of range");
    }
    return bytes;
  }

  const double unit_bytes = UnitBytes(unit);
  if (unit_bytes == 0.0) {
    return Invalid(value, absl::StrCat("unknown unit \"", unit,
                                       "\" (use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)"));
  }
  const double bytes = std::floor(amount * unit_bytes);
  if (bytes <= 0.0) return Invalid(value, "the budget must be positive");
  if (bytes >= 9.0e18) return Invalid(value, "the budget is out of range");
  return static_cast<int64_t>(bytes);
}

absl::StatusOr<int64_t> ParseKvCacheMemory(absl::string_view value) {
  // Read MemAvailable only for a unitless value at most 1: a fraction.
  int64_t available = 0;
  const size_t end = value.find_first_not_of("0123456789.");
  if (end == absl::string_view::npos) {
    double amount = 0.0;
    std::istringstream in{std::string(value)};
    in.imbue(std::locale::classic());
    if ((in >> amount) && amount <= 1.0) {
      absl::StatusOr<int64_t> avail = AvailableMemoryBytes();
      if (!avail.ok()) {
        return absl::Status(avail.status().code(),
                            absl::StrCat(kFlag, " \"", value, "\": ", avail.status().message()));
      }
      available = *avail;
    }
  }
  return ParseKvCacheMemory(value, available);
}

absl::StatusOr<int64_t> ParseMemAvailable(absl::string_view meminfo_text) {
  constexpr absl::string_view kKey = "MemAvailable:";
  size_t pos = 0;
  while (pos < meminfo_text.size()) {
    size_t eol = meminfo_text.find('\n', pos);
    if (eol == absl::string_view::npos) eol = meminfo_text.size();
    absl::string_view line = meminfo_text.substr(pos, eol - pos);
    pos = eol + 1;
    if (line.substr(0, kKey.size()) != kKey) continue;
    line = absl::StripAsciiWhitespace(line.substr(kKey.size()));
    int64_t kib = 0;
    const auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), kib);
    const absl::string_view rest =
        absl::StripAsciiWhitespace(line.substr(static_cast<size_t>(end - line.data())));
    if (ec != std::errc() || kib < 0 || rest != "kB") {
      return absl::DataLossError(
          absl::StrCat("/proc/meminfo: cannot parse MemAvailable line \"", line, "\""));
    }
    return kib * 1024;
  }
  return absl::NotFoundError("/proc/meminfo has no MemAvailable line");
}

absl::StatusOr<int64_t> AvailableMemoryBytes() {
  std::ifstream in("/proc/meminfo");
  if (!in) return absl::UnavailableError("cannot read /proc/meminfo");
  std::stringstream text;
  text << in.rdbuf();
  return ParseMemAvailable(text.str());
}

absl::StatusOr<int32_t> KvBlocksForBudget(int64_t budget_bytes, int32_t block_size,
                                          int32_t head_dim, DType kv_dtype) {
  const int64_t blocks = BlockPool::BlocksForBytes(budget_bytes, block_size, head_dim, kv_dtype);
  if (blocks < 1) {
    PagedKv geometry;
    geometry.block_size = block_size;
    geometry.head_dim = head_dim;
    geometry.kv_dtype = kv_dtype;
    return absl::InvalidArgumentError(
        absl::StrCat(kFlag, ": the budget of ", budget_bytes, " bytes is too small: one KV block (",
                     block_size, " tokens x head_dim ", head_dim, ", ", DTypeName(kv_dtype),
                     ") needs ", geometry.BlockBytes(), " bytes"));
  }
  if (blocks > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat(kFlag, ": the budget of ", budget_bytes,
                                                   " bytes holds more than 2^31 KV blocks"));
  }
  return static_cast<int32_t>(blocks);
}

}  // namespace fox
