#include "models/utf8.h"

#include <random>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"
#include "tests/models/reference_tools.h"

namespace fox {
namespace {

TEST(Utf8Test, FindsTheFirstIllFormedByte) {
  const std::pair<std::string, size_t> cases[] = {
      {"plain ascii", std::string::npos},
      {"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80", std::string::npos},
      {"a\x80", 1},             // stray continuation byte
      {"ab\xC0\x80", 2},        // overlong NUL
      {"\xC1\xBF", 0},          // overlong
      {"\xE0\x80\x80", 0},      // overlong three-byte
      {"x\xED\xA0\x80", 1},     // UTF-16 surrogate D800
      {"\xF4\x90\x80\x80", 0},  // past U+10FFFF
      {"\xF5\x80\x80\x80", 0},  // lead byte never valid
      {"ok\xFF", 2},
      {"\xE2\x82", 0},   // truncated at the end
      {"\xE2\x82x", 0},  // truncated by the next character
      {"\xF0\x9F\x98\x80\xF0\x9F\x98", 4},
  };
  for (const auto& [text, offset] : cases) {
    EXPECT_EQ(FindInvalidUtf8(text), offset) << absl::CHexEscape(text);
  }
}

TEST(Utf8Test, DecodesAndEncodesEveryCodePoint) {
  for (char32_t c = 0; c <= 0x10FFFF; c += (c < 0x20000 ? 1 : 97)) {
    if (c >= 0xD800 && c <= 0xDFFF) continue;
    std::string text;
    AppendUtf8(c, &text);
    ASSERT_EQ(FindInvalidUtf8(text), std::string::npos) << static_cast<uint32_t>(c);
    int length = 0;
    ASSERT_EQ(static_cast<uint32_t>(DecodeUtf8(text, 0, &length)), static_cast<uint32_t>(c));
    ASSERT_EQ(static_cast<size_t>(length), text.size());
  }
}

// Random byte strings biased towards UTF-8 lead and continuation bytes.
std::vector<std::string> RandomByteStrings(int count, uint32_t seed) {
  const uint8_t interesting[] = {0x41, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2,
                                 0xDF, 0xE0, 0xE1, 0xED, 0xEF, 0xF0, 0xF1, 0xF4, 0xF5, 0xFF};
  std::mt19937 rng(seed);
  std::vector<std::string> strings;
  for (int i = 0; i < count; ++i) {
    std::string bytes;
    const int length = 1 + rng() % 12;
    for (int k = 0; k < length; ++k) {
      bytes.push_back(
          static_cast<char>(rng() % 2 ? interesting[rng() % sizeof(interesting)] : rng() % 256));
    }
    strings.push_back(bytes);
  }
  return strings;
}

// Python's bytes.decode('utf-8', 'replace') follows the same maximal-subpart
// rule; it is the reference for the lossy decoder.
TEST(Utf8Test, LossyDecodingMatchesPython) {
  const std::vector<std::string> strings = RandomByteStrings(3000, 5);
  std::vector<std::string> hex;
  for (const std::string& s : strings) hex.push_back(absl::BytesToHexString(s));
  const absl::StatusOr<nlohmann::json> decoded = ::fox::testing::RunPython(
      "print(json.dumps([bytes.fromhex(h).decode('utf-8', 'replace') for h in data]))", hex);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  for (size_t i = 0; i < strings.size(); ++i) {
    std::string out;
    EXPECT_EQ(AppendUtf8Lossy(strings[i], /*final=*/true, &out), strings[i].size());
    EXPECT_EQ(out, (*decoded)[i].get<std::string>()) << absl::CHexEscape(strings[i]);
  }
}

TEST(Utf8Test, StreamingHoldsBackOnlyAnIncompleteTail) {
  const std::pair<std::string, size_t> cases[] = {
      {"ab\xE2\x82", 2},     {"ab\xF0", 2},
      {"ab\xF0\x9F\x98", 2}, {"ab\xE2x", 4},  // decided: ill-formed
      {"ab\xE0\x80", 4},                      // decided: E0 80 can never be well-formed
      {"ab\xC3\xA9", 4},
  };
  for (const auto& [bytes, consumed] : cases) {
    std::string out;
    EXPECT_EQ(AppendUtf8Lossy(bytes, /*final=*/false, &out), consumed) << absl::CHexEscape(bytes);
  }
}

TEST(Utf8Test, StreamingInAnyPiecesMatchesOneShot) {
  std::mt19937 rng(3);
  for (const std::string& bytes : RandomByteStrings(3000, 9)) {
    std::string expected;
    AppendUtf8Lossy(bytes, /*final=*/true, &expected);
    std::string out;
    std::string pending;
    for (char byte : bytes) {
      pending.push_back(byte);
      if (rng() % 2) pending.erase(0, AppendUtf8Lossy(pending, /*final=*/false, &out));
    }
    AppendUtf8Lossy(pending, /*final=*/true, &out);
    ASSERT_EQ(out, expected) << absl::CHexEscape(bytes);
  }
}

}  // namespace
}  // namespace fox
