#include "models/bounded_json.h"

#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace fox {
namespace {

std::string Nested(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

TEST(BoundedJsonTest, ParsesWithinTheLimits) {
  absl::StatusOr<nlohmann::json> parsed =
      ParseBoundedJson(R"({"a": [1, 2.5, "x", {"b": null}], "c": true})", "the body");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ((*parsed)["a"][1].get<double>(), 2.5);
  EXPECT_EQ((*parsed)["a"][3]["b"], nullptr);
  EXPECT_TRUE((*parsed)["c"].get<bool>());
}

TEST(BoundedJsonTest, DepthIsCountedPerContainer) {
  JsonLimits limits;
  limits.max_depth = 3;
  EXPECT_TRUE(ParseBoundedJson(Nested(3), "x", limits).ok());
  EXPECT_TRUE(ParseBoundedJson(R"({"a": {"b": [1]}, "c": [[2]]})", "x", limits).ok());
  absl::StatusOr<nlohmann::json> deep = ParseBoundedJson(Nested(4), "the body", limits);
  ASSERT_FALSE(deep.ok());
  EXPECT_EQ(deep.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(deep.status().message(), "the body nests arrays and objects deeper than 3 levels");
}

// 100,000 levels would overflow the stack of any recursive walk; the parse
// stops at the 65th.
TEST(BoundedJsonTest, RefusesHostileNestingWithoutRecursing) {
  const std::string body = "{\"model\": " + Nested(100000) + "}";
  absl::StatusOr<nlohmann::json> parsed = ParseBoundedJson(body, "the request body");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().message(),
            "the request body nests arrays and objects deeper than 64 levels");
  // An unterminated one too.
  EXPECT_FALSE(ParseBoundedJson(std::string(100000, '{'), "x").ok());
}

TEST(BoundedJsonTest, CountsValues) {
  JsonLimits limits;
  limits.max_values = 4;
  EXPECT_TRUE(ParseBoundedJson("[1, 2, 3]", "x", limits).ok());  // the list and 3 numbers
  absl::StatusOr<nlohmann::json> many = ParseBoundedJson("[1, 2, 3, 4]", "the list", limits);
  ASSERT_FALSE(many.ok());
  EXPECT_EQ(many.status().message(), "the list has more than 4 values");
}

TEST(BoundedJsonTest, SyntaxErrorsAndOverflowNameThePosition) {
  absl::StatusOr<nlohmann::json> bad = ParseBoundedJson("{\"a\": }", "config.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(bad.status().message(),
                               "config.json is not valid JSON: parse error at line 1, column 7"))
      << bad.status();
  // A number too large for a double is a client error, not a crash or a 500.
  absl::StatusOr<nlohmann::json> huge = ParseBoundedJson(R"({"temperature": 1e400})", "the body");
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(huge.status().message().find("1e400"), std::string::npos) << huge.status();
  // Invalid UTF-8 inside a string.
  EXPECT_FALSE(ParseBoundedJson("[\"\xff\"]", "x").ok());
}

TEST(BoundedJsonTest, TypeNamesNeverShowTheValue) {
  EXPECT_STREQ(JsonTypeName(nlohmann::json("secret")), "a string");
  EXPECT_STREQ(JsonTypeName(nlohmann::json(3)), "an integer");
  EXPECT_STREQ(JsonTypeName(nlohmann::json(3u)), "an integer");
  EXPECT_STREQ(JsonTypeName(nlohmann::json(0.5)), "a number");
  EXPECT_STREQ(JsonTypeName(nlohmann::json(true)), "true or false");
  EXPECT_STREQ(JsonTypeName(nlohmann::json(nullptr)), "null");
  EXPECT_STREQ(JsonTypeName(nlohmann::json::array()), "a list");
  EXPECT_STREQ(JsonTypeName(nlohmann::json::object()), "an object");
}

}  // namespace
}  // namespace fox
