// Typed reads of a request body's fields, with errors that name the field as
// the API spells it ("max_tokens must be an integer, got \"ten\""). A read
// of an absent or null field returns nullopt; a wrong type records the first
// error, which status() returns once all fields have been read.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace fox {

class JsonFields {
 public:
  // `object` must outlive this reader.
  explicit JsonFields(const nlohmann::json& object) : object_(object) {}

  // The field when present and not null.
  const nlohmann::json* Find(absl::string_view name) const;

  std::optional<double> Number(absl::string_view name);
  std::optional<int64_t> Integer(absl::string_view name);  // integral numbers only
  std::optional<bool> Bool(absl::string_view name);
  std::optional<std::string> String(absl::string_view name);

  // Records an error about `name` (the first error wins).
  void Fail(absl::string_view name, absl::string_view message);
  absl::Status status() const { return status_; }

 private:
  const nlohmann::json& object_;
  absl::Status status_;
};

// A short rendering of a JSON value for error messages (at most ~40 characters).
std::string Describe(const nlohmann::json& value);

}  // namespace fox
