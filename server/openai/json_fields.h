// Typed reads of a request body's fields, with errors that name the field as
// the API spells it ("max_tokens must be an integer in [1, 16384], got a
// string"). A read of an absent or null field returns nullopt; a wrong type
// or an out-of-range number records the first error, which status() returns
// once all fields have been read. Numbers are checked before any conversion,
// so no client value can overflow or wrap.
#pragma once

#include <cstdint>
#include <limits>
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
  // Integral numbers (16.0 counts) in [min, max]; anything else is an error
  // naming the range.
  std::optional<int64_t> Integer(absl::string_view name,
                                 int64_t min = std::numeric_limits<int64_t>::min(),
                                 int64_t max = std::numeric_limits<int64_t>::max());
  // Any integer a 64-bit seed can hold: [-2^63, 2^64 - 1], negatives two's
  // complement (as Python's and vLLM's seeds wrap).
  std::optional<uint64_t> Seed(absl::string_view name);
  std::optional<bool> Bool(absl::string_view name);
  std::optional<std::string> String(absl::string_view name);

  // Records an error about `name` (the first error wins).
  void Fail(absl::string_view name, absl::string_view message);
  absl::Status status() const { return status_; }

 private:
  const nlohmann::json& object_;
  absl::Status status_;
};

// `value` as an integer in [min, max], or nullopt (not integral, or outside).
std::optional<int64_t> IntegerIn(const nlohmann::json& value, int64_t min, int64_t max);

// A short description of a client's value for error messages: a number or a
// boolean is shown (at most ~24 characters); strings, lists and objects are
// named by type ("a string", "a list"), never dumped.
std::string Describe(const nlohmann::json& value);

}  // namespace fox
