#include "models/json_escape.h"

#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "models/utf8.h"
#include "tests/models/reference_tools.h"
#include "tests/models/tokenizer_test_corpus.h"

namespace fox {
namespace {

using ::fox::testing::RandomTexts;
using ::fox::testing::RunPython;
using ::fox::testing::TokenizerSamples;

const std::string kFffd = kReplacementUtf8;

// The samples, random mixtures, and every code point in ranges where the
// escaping rules change (controls, DEL, Latin-1, BMP edges, astral planes).
std::vector<std::string> EscapingCorpus() {
  std::vector<std::string> corpus = TokenizerSamples();
  for (std::string& text : RandomTexts(400, /*seed=*/7)) corpus.push_back(std::move(text));
  const char32_t ranges[][2] = {{0x00, 0x2FF},      {0x2000, 0x206F},    {0xD700, 0xD7FF},
                                {0xE000, 0xE0FF},   {0xFEFF, 0xFFFF},    {0x10000, 0x100FF},
                                {0x1F600, 0x1F64F}, {0x10FF00, 0x10FFFF}};
  for (const auto& [first, last] : ranges) {
    std::string text;
    for (char32_t c = first; c <= last; ++c) AppendUtf8(c, &text);
    corpus.push_back(std::move(text));
  }
  return corpus;
}

TEST(JsonEscapeTest, MatchesPythonJsonDumps) {
  const std::vector<std::string> corpus = EscapingCorpus();
  const absl::StatusOr<std::vector<std::string>> expected =
      ::fox::testing::PythonJsonEscape(corpus);
  ASSERT_TRUE(expected.ok()) << expected.status();
  ASSERT_EQ(expected->size(), corpus.size());
  for (size_t i = 0; i < corpus.size(); ++i) {
    EXPECT_EQ(JsonEscape(corpus[i]), (*expected)[i]) << "text " << i << ": " << corpus[i];
  }
}

TEST(JsonEscapeTest, PythonJsonLoadsInvertsIt) {
  const std::vector<std::string> corpus = EscapingCorpus();
  std::vector<std::string> escaped;
  for (const std::string& text : corpus) escaped.push_back(JsonEscape(text));
  const absl::StatusOr<nlohmann::json> loaded =
      RunPython("print(json.dumps([json.loads('\"' + e + '\"') for e in data]))", escaped);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->size(), corpus.size());
  for (size_t i = 0; i < corpus.size(); ++i) {
    EXPECT_EQ((*loaded)[i].get<std::string>(), corpus[i]) << "text " << i;
    EXPECT_EQ(JsonUnescape(escaped[i]), corpus[i]) << "text " << i;
  }
}

// Valid JSON string bodies that json.dumps itself never writes.
TEST(JsonEscapeTest, UnescapesWhatPythonJsonLoadsAccepts) {
  const std::vector<std::string> bodies = {
      "\\u00E9\\u00e9\\u00C9",
      "\\/slash\\/",
      "\\uD83D\\uDE00 \\ud83d\\ude00 \\uD83d\\uDe00",
      "\\u0000\\u001F\\u007f",
      "plain",
      "\\\"\\\\\\b\\f\\n\\r\\t",
      "\\u2028\\uFFFF\\uFEFF",
      "\\uDBFF\\uDFFF\\uD800\\uDC00",
      "caf\\u00e9 na\\u00efve",
  };
  const absl::StatusOr<nlohmann::json> loaded =
      RunPython("print(json.dumps([json.loads('\"' + e + '\"') for e in data]))", bodies);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  for (size_t i = 0; i < bodies.size(); ++i) {
    EXPECT_EQ(JsonUnescape(bodies[i]), (*loaded)[i].get<std::string>()) << bodies[i];
  }
}

TEST(JsonEscapeTest, EscapesKnownExamples) {
  EXPECT_EQ(JsonEscape("caf\xC3\xA9"), "caf\\u00e9");
  EXPECT_EQ(JsonEscape("\xF0\x9F\x98\x80"), "\\ud83d\\ude00");
  EXPECT_EQ(JsonEscape("a\"b\\c\n\t\r\b\f"), "a\\\"b\\\\c\\n\\t\\r\\b\\f");
  EXPECT_EQ(JsonEscape(std::string("\0\x1f\x7f", 3)), "\\u0000\\u001f\\u007f");
  EXPECT_EQ(JsonEscape("/<>'"), "/<>'");
  EXPECT_EQ(JsonEscape(""), "");
}

TEST(JsonEscapeTest, UnescapeReplacesInvalidEscapesAndLoneSurrogates) {
  const std::pair<std::string, std::string> cases[] = {
      {"a\\qb", "a" + kFffd + "qb"},    // unknown escape: the backslash goes
      {"\\u12G4", kFffd + "G4"},        // too few hex digits
      {"\\u", kFffd},                   // ends inside \u
      {"x\\u00e", "x" + kFffd},         // ends inside the digits
      {"end\\", "end" + kFffd},         // trailing backslash
      {"\\ud83d", kFffd},               // high surrogate at the end
      {"\\ud83dx", kFffd + "x"},        // high surrogate, then text
      {"\\ud83d\\n", kFffd + "\n"},     // high surrogate, then another escape
      {"\\ud83d\\u0041", kFffd + "A"},  // high surrogate, then a non-surrogate
      {"\\ud83d\\ud83d\\ude00", kFffd + "\xF0\x9F\x98\x80"},  // two highs, one pair
      {"\\ude00", kFffd},                                     // low surrogate alone
      {"\\ude00\\ud83d", kFffd + kFffd},                      // low before high is no pair
      {"\\ud83d\\ude", kFffd + kFffd},                        // ends inside the low one
      {"\\\xC3\xA9", kFffd + "\xC3\xA9"},  // backslash before a non-ASCII character
      {"\\\\u00e9", "\\u00e9"},            // an escaped backslash, then text
  };
  for (const auto& [input, expected] : cases) {
    EXPECT_EQ(JsonUnescape(input), expected) << input;
  }
}

TEST(JsonEscapeTest, StreamingHoldsBackOnlyUndecidedEscapes) {
  struct Case {
    std::string input;
    size_t consumed;
    std::string output;
  };
  const Case cases[] = {
      {"ab\\", 2, "ab"},
      {"ab\\u", 2, "ab"},
      {"ab\\u00e", 2, "ab"},
      {"ab\\u00e9", 8, "ab\xC3\xA9"},
      {"\\ud83d", 0, ""},
      {"\\ud83d\\", 0, ""},
      {"\\ud83d\\ude0", 0, ""},
      {"\\ud83d\\ude00", 12, "\xF0\x9F\x98\x80"},
      {"\\ud83dx", 7, kFffd + "x"},
      {"\\ud83d\\u0", 6, kFffd},  // \u0... cannot be a low surrogate: decided
      {"\\ud83d\\n", 8, kFffd + "\n"},
      {"\\q", 2, kFffd + "q"},
  };
  for (const Case& c : cases) {
    std::string out;
    EXPECT_EQ(AppendJsonUnescaped(c.input, /*final=*/false, &out), c.consumed) << c.input;
    EXPECT_EQ(out, c.output) << c.input;
  }
}

// Feeds `text` in pieces cut at `cuts`, carrying each unconsumed tail over.
std::string UnescapeInPieces(const std::string& text, const std::vector<size_t>& cuts) {
  std::string out;
  std::string pending;
  size_t begin = 0;
  for (size_t cut : cuts) {
    pending += text.substr(begin, cut - begin);
    begin = cut;
    pending.erase(0, AppendJsonUnescaped(pending, /*final=*/false, &out));
  }
  pending += text.substr(begin);
  AppendJsonUnescaped(pending, /*final=*/true, &out);
  return out;
}

TEST(JsonEscapeTest, StreamingInAnyPiecesMatchesOneShot) {
  // An alphabet dense in escape material, so random strings hit every rule.
  const std::vector<std::string> alphabet = {"\\", "u", "d", "8", "3",  "D", "e", "0",
                                             "c",  "f", "n", "q", "\"", "x", " ", "\xC3\xA9"};
  std::mt19937 rng(11);
  for (int trial = 0; trial < 3000; ++trial) {
    std::string text;
    const int length = 1 + rng() % 30;
    for (int i = 0; i < length; ++i) text += alphabet[rng() % alphabet.size()];
    const std::string expected = JsonUnescape(text);
    // Every single cut, then random multi-cuts.
    for (size_t cut = 0; cut <= text.size(); ++cut) {
      ASSERT_EQ(UnescapeInPieces(text, {cut}), expected) << text << " cut at " << cut;
    }
    std::vector<size_t> cuts;
    for (size_t pos = 0; pos <= text.size(); ++pos) {
      if (rng() % 3 == 0) cuts.push_back(pos);
    }
    ASSERT_EQ(UnescapeInPieces(text, cuts), expected) << text;
  }
}

}  // namespace
}  // namespace fox
