#include "server/openai/json_fields.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "models/bounded_json.h"
#include "server/openai/api_error.h"

namespace fox {

const nlohmann::json* JsonFields::Find(absl::string_view name) const {
  const auto it = object_.find(name);
  if (it == object_.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<double> JsonFields::Number(absl::string_view name) {
  const nlohmann::json* value = Find(name);
  if (value == nullptr) return std::nullopt;
  if (!value->is_number()) {
    Fail(name, absl::StrCat(name, " must be a number, got ", Describe(*value)));
    return std::nullopt;
  }
  return value->get<double>();
}

std::optional<int64_t> IntegerIn(const nlohmann::json& value, int64_t min, int64_t max) {
  if (value.is_number_unsigned()) {
    const uint64_t x = value.get<uint64_t>();
    if (x > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    const auto signed_x = static_cast<int64_t>(x);
    if (signed_x < min || signed_x > max) return std::nullopt;
    return signed_x;
  }
  if (value.is_number_integer()) {
    const int64_t x = value.get<int64_t>();
    if (x < min || x > max) return std::nullopt;
    return x;
  }
  // 16.0 is an integer to JavaScript clients; 16.5 is not. Compared as
  // doubles before converting, so that 1e300 cannot overflow the cast.
  if (value.is_number_float()) {
    const double x = value.get<double>();
    if (!std::isfinite(x) || x != std::floor(x)) return std::nullopt;
    if (x < static_cast<double>(min) || x > static_cast<double>(max)) return std::nullopt;
    if (std::abs(x) >= 9007199254740992.0) return std::nullopt;  // 2^53: no longer exact
    return static_cast<int64_t>(x);
  }
  return std::nullopt;
}

namespace {

std::string RangeText(int64_t min, int64_t max) {
  constexpr int64_t kLowest = std::numeric_limits<int64_t>::min();
  constexpr int64_t kHighest = std::numeric_limits<int64_t>::max();
  if (min == kLowest && max == kHighest) return "an integer";
  if (max == kHighest) return absl::StrCat("an integer >= ", min);
  if (min == kLowest) return absl::StrCat("an integer <= ", max);
  return absl::StrCat("an integer in [", min, ", ", max, "]");
}

}  // namespace

std::optional<int64_t> JsonFields::Integer(absl::string_view name, int64_t min, int64_t max) {
  const nlohmann::json* value = Find(name);
  if (value == nullptr) return std::nullopt;
  if (std::optional<int64_t> x = IntegerIn(*value, min, max)) return x;
  Fail(name, absl::StrCat(name, " must be ", RangeText(min, max), ", got ", Describe(*value)));
  return std::nullopt;
}

std::optional<uint64_t> JsonFields::Seed(absl::string_view name) {
  const nlohmann::json* value = Find(name);
  if (value == nullptr) return std::nullopt;
  if (value->is_number_unsigned()) return value->get<uint64_t>();
  if (std::optional<int64_t> x = IntegerIn(*value, std::numeric_limits<int64_t>::min(),
                                           std::numeric_limits<int64_t>::max())) {
    return static_cast<uint64_t>(*x);
  }
  Fail(name, absl::StrCat(name, " must be an integer in [-2^63, 2^64 - 1], got ",
                          Describe(*value)));
  return std::nullopt;
}

std::optional<bool> JsonFields::Bool(absl::string_view name) {
  const nlohmann::json* value = Find(name);
  if (value == nullptr) return std::nullopt;
  if (!value->is_boolean()) {
    Fail(name, absl::StrCat(name, " must be true or false, got ", Describe(*value)));
    return std::nullopt;
  }
  return value->get<bool>();
}

std::optional<std::string> JsonFields::String(absl::string_view name) {
  const nlohmann::json* value = Find(name);
  if (value == nullptr) return std::nullopt;
  if (!value->is_string()) {
    Fail(name, absl::StrCat(name, " must be a string, got ", Describe(*value)));
    return std::nullopt;
  }
  return value->get<std::string>();
}

void JsonFields::Fail(absl::string_view name, absl::string_view message) {
  if (status_.ok()) status_ = InvalidParam(name, message);
}

std::string Describe(const nlohmann::json& value) {
  if (value.is_number() || value.is_boolean()) {
    std::string text = value.dump();  // a scalar: no recursion
    if (text.size() > 24) text = absl::StrCat(text.substr(0, 21), "...");
    return text;
  }
  return JsonTypeName(value);
}

}  // namespace fox
