// ParseBoundedJson: nlohmann's parser with a callback that counts depth and
// values as the parse goes and stops it at the first excess.
#include "models/bounded_json.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace fox {
namespace {

using nlohmann::json;

// Thrown from the parser callback to stop the parse; never escapes.
struct LimitExceeded {
  std::string message;
};

}  // namespace

absl::StatusOr<json> ParseBoundedJson(absl::string_view text, absl::string_view what,
                                      const JsonLimits& limits) {
  // nlohmann's lexer reads a NUL byte as the end of the input, so without
  // this "{...}\0<anything>" would parse as its first value. JSON has no
  // raw NUL anywhere (inside a string it is \u0000).
  if (const size_t nul = text.find('\0'); nul != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is not valid JSON: a NUL byte at offset ", nul));
  }
  int depth = 0;
  int64_t num_values = 0;
  auto on_event = [&](int, json::parse_event_t event, json&) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (++depth > limits.max_depth) {
          throw LimitExceeded{absl::StrCat(what, " nests arrays and objects deeper than ",
                                           limits.max_depth, " levels")};
        }
        [[fallthrough]];
      case json::parse_event_t::value:
        if (++num_values > limits.max_values) {
          throw LimitExceeded{absl::StrCat(what, " has more than ", limits.max_values, " values")};
        }
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        --depth;
        break;
      case json::parse_event_t::key:
        break;
    }
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), on_event);
  } catch (const LimitExceeded& e) {
    return absl::InvalidArgumentError(e.message);
  } catch (const json::exception& e) {
    // e.what() reads "[json.exception.parse_error.101] parse error at line 1, column 9: ...".
    std::string message = e.what();
    if (const size_t start = message.find("] "); start != std::string::npos) {
      message = message.substr(start + 2);
    }
    return absl::InvalidArgumentError(absl::StrCat(what, " is not valid JSON: ", message));
  }
}

const char* JsonTypeName(const json& value) {
  switch (value.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "true or false";
    case json::value_t::string:
      return "a string";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "an integer";
    case json::value_t::number_float:
      return "a number";
    case json::value_t::array:
      return "a list";
    case json::value_t::object:
      return "an object";
    case json::value_t::binary:
    case json::value_t::discarded:
      break;
  }
  return "a value";
}

std::string DescribeJsonValue(const json& value) {
  if (value.is_structured() || value.is_binary() || value.is_discarded()) {
    return JsonTypeName(value);
  }
  constexpr size_t kMaxBytes = 40;
  // A scalar: dump() does not recurse. Invalid UTF-8 (which a parsed value
  // cannot hold) is replaced rather than thrown.
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > kMaxBytes) {
    size_t cut = kMaxBytes;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    text = absl::StrCat(text.substr(0, cut), "...");
  }
  return text;
}

}  // namespace fox
