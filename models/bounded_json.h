// Parsing JSON from outside the process (request bodies, config.json, the
// tokenizer files, a safetensors header) with its nesting depth and its
// element count bounded while it is parsed, so that hostile input is refused
// before it is built: nothing deep enough to overflow a recursive walk
// (dump(), the destructor, a comparison) can come out of here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace fox {

struct JsonLimits {
  // Arrays and objects nested inside each other; the top-level value is at
  // depth 1 when it is an array or object.
  int max_depth = 64;
  // Values of any kind (scalars, arrays, objects, object keys not counted).
  int64_t max_values = int64_t{1} << 24;
};

// Parses `text` as one JSON document. Errors are InvalidArgument and begin
// with `what` ("the request body", "config.json"):
//   "<what> is not valid JSON: parse error at line 1, column 9: ..."
//   "<what> nests arrays and objects deeper than 64 levels"
//   "<what> has more than N values"
absl::StatusOr<nlohmann::json> ParseBoundedJson(absl::string_view text, absl::string_view what,
                                                const JsonLimits& limits = {});

// The kind of a JSON value as error messages name it: "a string", "an
// integer", "a number", "true or false", "null", "a list", "an object".
// Never shows the value itself.
const char* JsonTypeName(const nlohmann::json& value);

// A value for an error message about a file the operator controls: a
// scalar as JSON text, cut to about 40 bytes (on a UTF-8 boundary); an array
// or object by its type name. Never recursive.
std::string DescribeJsonValue(const nlohmann::json& value);

}  // namespace fox
