#include "server/openai/json_fields.h"

#include <cmath>

#include "absl/strings/str_cat.h"
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

std::optional<int64_t> JsonFields::Integer(absl::string_view name) {
  const nlohmann::json* value = Find(name);
  if (value == nullptr) return std::nullopt;
  if (value->is_number_integer()) return value->get<int64_t>();
  // 16.0 is an integer to JavaScript clients; 16.5 is not.
  if (value->is_number_float()) {
    const double x = value->get<double>();
    if (std::isfinite(x) && x == std::floor(x) && std::abs(x) < 9e15) {
      return static_cast<int64_t>(x);
    }
  }
  Fail(name, absl::StrCat(name, " must be an integer, got ", Describe(*value)));
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
  std::string text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (text.size() > 40) text = absl::StrCat(text.substr(0, 37), "...");
  return text;
}

}  // namespace fox
