// Inputs the fuzz targets (fuzz/) found mishandled in models/, kept as
// regression tests beside the component's own tests.
#include <string>

#include "gtest/gtest.h"
#include "models/bounded_json.h"

namespace fox {
namespace {

using namespace std::string_literals;

// json_escape_fuzzer: nlohmann's lexer stops at a NUL byte as if the input
// ended there, so a document followed by NUL and anything at all parsed as
// the document alone (a request body, config.json or safetensors header
// with trailing garbage was accepted).
TEST(FuzzRegressionTest, BoundedJsonRefusesANulByteAnywhere) {
  for (const std::string& text :
       {"{\"prompt\": \"hi\"}\0garbage{{{"s, "{\"a\": 1}\0"s, "\0"s, "[1,\0 2]"s}) {
    const absl::StatusOr<nlohmann::json> parsed = ParseBoundedJson(text, "the request body");
    ASSERT_FALSE(parsed.ok()) << parsed->dump();
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(parsed.status().message(),
              "the request body is not valid JSON: a NUL byte at offset " +
                  std::to_string(text.find('\0')));
  }
  // Escaped, a NUL is an ordinary character of a string.
  const absl::StatusOr<nlohmann::json> escaped = ParseBoundedJson(R"({"a": "x\u0000y"})", "x");
  ASSERT_TRUE(escaped.ok()) << escaped.status();
  EXPECT_EQ((*escaped)["a"].get<std::string>(), "x\0y"s);
}

}  // namespace
}  // namespace fox
