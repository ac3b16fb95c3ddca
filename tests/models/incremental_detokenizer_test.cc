#include "models/incremental_detokenizer.h"

#include <random>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"
#include "models/tokenizer.h"
#include "models/utf8.h"
#include "tests/models/gpt2_tokenizer_fixture.h"
#include "tests/models/tokenizer_test_corpus.h"

namespace fox {
namespace {

using ::fox::testing::Gpt2Tokenizer;
using Ids = std::vector<int32_t>;

constexpr int32_t kEndOfText = 50256;
const std::string kFffd = kReplacementUtf8;

// The pieces a stream produces: one per Push, then the Flush.
std::vector<std::string> Stream(const Tokenizer& tokenizer, const Ids& ids) {
  IncrementalDetokenizer detokenizer(tokenizer);
  std::vector<std::string> pieces;
  for (int32_t id : ids) pieces.push_back(detokenizer.Push(id));
  pieces.push_back(detokenizer.Flush());
  return pieces;
}

std::string Join(const std::vector<std::string>& pieces) {
  std::string joined;
  for (const std::string& piece : pieces) joined += piece;
  return joined;
}

// The property: every piece is well-formed UTF-8 and they add up to Decode.
void ExpectStreamMatchesDecode(const Tokenizer& tokenizer, const Ids& ids) {
  const std::vector<std::string> pieces = Stream(tokenizer, ids);
  for (const std::string& piece : pieces) {
    ASSERT_EQ(FindInvalidUtf8(piece), std::string::npos) << absl::CHexEscape(piece);
  }
  const absl::StatusOr<std::string> decoded = tokenizer.Decode(ids);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ASSERT_EQ(Join(pieces), *decoded)
      << "escaped " << tokenizer.json_escaped() << ", ids " << ::testing::PrintToString(ids);
}

// The one-byte token of each byte value.
std::vector<int32_t> ByteTokens(const Tokenizer& tokenizer) {
  std::vector<int32_t> ids(256, -1);
  for (int32_t id = 0; id < tokenizer.vocab_size(); ++id) {
    const std::string& bytes = tokenizer.TokenBytes(id);
    if (bytes.size() == 1 && !tokenizer.IsSpecial(id)) ids[static_cast<uint8_t>(bytes[0])] = id;
  }
  return ids;
}

// One token per byte of `bytes`: the finest split a model could produce.
Ids PerByte(const Tokenizer& tokenizer, const std::string& bytes) {
  // Computed once: both test tokenizers share GPT-2's vocabulary.
  static const std::vector<int32_t> byte_tokens = ByteTokens(tokenizer);
  Ids ids;
  for (char b : bytes) ids.push_back(byte_tokens[static_cast<uint8_t>(b)]);
  return ids;
}

TEST(IncrementalDetokenizerTest, RandomIdSequencesMatchDecode) {
  std::mt19937 rng(101);
  for (bool escaped : {true, false}) {
    const Tokenizer& tokenizer = Gpt2Tokenizer(escaped);
    std::uniform_int_distribution<int32_t> any_id(0, tokenizer.vocab_size() - 1);
    for (int trial = 0; trial < 2000; ++trial) {
      Ids ids(1 + rng() % 30);
      for (int32_t& id : ids) id = any_id(rng);
      ExpectStreamMatchesDecode(tokenizer, ids);
    }
  }
}

// Random bytes, one token each: ill-formed UTF-8 in every shape.
TEST(IncrementalDetokenizerTest, RandomByteTokensMatchDecode) {
  const uint8_t interesting[] = {'a',  '\\', 'u',  'd',  '8',  'e',  '0',  0x80,
                                 0x9F, 0xBF, 0xC3, 0xE0, 0xED, 0xF0, 0xF4, 0xFF};
  std::mt19937 rng(202);
  for (bool escaped : {true, false}) {
    const Tokenizer& tokenizer = Gpt2Tokenizer(escaped);
    for (int trial = 0; trial < 2000; ++trial) {
      std::string bytes;
      const int length = 1 + rng() % 16;
      for (int i = 0; i < length; ++i) {
        bytes.push_back(
            static_cast<char>(rng() % 2 ? interesting[rng() % sizeof(interesting)] : rng() % 256));
      }
      ExpectStreamMatchesDecode(tokenizer, PerByte(tokenizer, bytes));
    }
  }
}

TEST(IncrementalDetokenizerTest, TokensOfRealTextGiveTheTextBack) {
  std::vector<std::string> corpus = ::fox::testing::TokenizerSamples();
  for (std::string& text : ::fox::testing::RandomTexts(300, 303)) corpus.push_back(text);
  for (bool escaped : {true, false}) {
    const Tokenizer& tokenizer = Gpt2Tokenizer(escaped);
    for (const std::string& text : corpus) {
      const Ids ids = *tokenizer.Encode(text, /*add_bos=*/true);
      ExpectStreamMatchesDecode(tokenizer, ids);
      EXPECT_EQ(Join(Stream(tokenizer, ids)), text);
    }
  }
}

// Escape material chopped into tokens at random places (each chunk tokenized
// on its own, so token boundaries fall inside escapes), and sometimes a
// special token dropped in between.
TEST(IncrementalDetokenizerTest, EscapesSplitAcrossTokensMatchDecode) {
  const std::vector<std::string> alphabet = {
      "\\", "u", "d",  "8", "3", "D",       "e",       "0",       "c",       "f",
      "n",  "q", "\"", "x", " ", "\\ud83d", "\\ude00", "\\u00e9", "\xC3\xA9"};
  const Tokenizer& escaped = Gpt2Tokenizer(true);
  const Tokenizer& plain = Gpt2Tokenizer(false);
  std::mt19937 rng(404);
  for (int trial = 0; trial < 3000; ++trial) {
    Ids ids;
    const int chunks = 1 + rng() % 8;
    for (int c = 0; c < chunks; ++c) {
      std::string chunk;
      const int length = 1 + rng() % 4;
      for (int i = 0; i < length; ++i) chunk += alphabet[rng() % alphabet.size()];
      const Ids chunk_ids = *plain.Encode(chunk, false);
      ids.insert(ids.end(), chunk_ids.begin(), chunk_ids.end());
      if (rng() % 8 == 0) ids.push_back(kEndOfText);
    }
    ExpectStreamMatchesDecode(escaped, ids);
  }
}

TEST(IncrementalDetokenizerTest, EmojiSplitAcrossTokensWaitsForItsLastByte) {
  const Tokenizer& plain = Gpt2Tokenizer(false);
  EXPECT_EQ(Stream(plain, PerByte(plain, "a\xF0\x9F\x98\x80!")),
            (std::vector<std::string>{"a", "", "", "", "\xF0\x9F\x98\x80", "!", ""}));
  // A ZWJ family: each emoji appears when complete, never a partial one.
  const std::string family = "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9";
  const std::vector<std::string> pieces = Stream(plain, PerByte(plain, family));
  EXPECT_EQ(Join(pieces), family);
  EXPECT_EQ(pieces[3], "\xF0\x9F\x91\xA8");
  EXPECT_EQ(pieces[6], "\xE2\x80\x8D");
  // An ill-formed sequence is replaced as soon as it is known to be bad.
  EXPECT_EQ(Stream(plain, PerByte(plain,
                                  "\xF0\x9F"
                                  "a")),
            (std::vector<std::string>{"", "", kFffd + "a", ""}));
}

TEST(IncrementalDetokenizerTest, SurrogatePairEscapeWaitsForItsLowHalf) {
  const Tokenizer& escaped = Gpt2Tokenizer(true);
  const std::vector<std::string> pieces = Stream(escaped, PerByte(escaped, "\\ud83d\\ude00"));
  ASSERT_EQ(pieces.size(), 13u);
  for (int i = 0; i < 11; ++i) EXPECT_EQ(pieces[i], "") << i;
  EXPECT_EQ(pieces[11], "\xF0\x9F\x98\x80");
  EXPECT_EQ(pieces[12], "");
  // The real tokens of an escaped emoji.
  const Ids ids = *escaped.Encode("\xF0\x9F\x98\x80 ok", false);
  EXPECT_EQ(Join(Stream(escaped, ids)), "\xF0\x9F\x98\x80 ok");
}

TEST(IncrementalDetokenizerTest, InvalidEscapesAndLoneSurrogatesBecomeReplacements) {
  const Tokenizer& escaped = Gpt2Tokenizer(true);
  const auto stream = [&](const std::string& text) {
    return Stream(escaped, PerByte(escaped, text));
  };
  // A lone high surrogate is known to be lone at the first character that
  // cannot continue a low one.
  EXPECT_EQ(stream("\\ud83dx"),
            (std::vector<std::string>{"", "", "", "", "", "", kFffd + "x", ""}));
  EXPECT_EQ(stream("\\ude00"), (std::vector<std::string>{"", "", "", "", "", kFffd, ""}));
  EXPECT_EQ(stream("\\qa"), (std::vector<std::string>{"", kFffd + "q", "a", ""}));
  // Held back until Flush: a trailing backslash, \u with few digits, a high
  // surrogate with nothing after it.
  EXPECT_EQ(stream("ab\\"), (std::vector<std::string>{"a", "b", "", kFffd}));
  EXPECT_EQ(stream("\\u12"), (std::vector<std::string>{"", "", "", "", kFffd}));
  EXPECT_EQ(stream("\\ud83d"), (std::vector<std::string>{"", "", "", "", "", "", kFffd}));
}

TEST(IncrementalDetokenizerTest, SpecialAndUnknownIdsContributeNothing) {
  const Tokenizer& escaped = Gpt2Tokenizer(true);
  Ids ids = PerByte(escaped, "\\u00e9");
  ids.insert(ids.begin() + 3, kEndOfText);
  ids.insert(ids.begin() + 1, 999999);
  const std::vector<std::string> pieces = Stream(escaped, ids);
  EXPECT_EQ(Join(pieces), "\xC3\xA9");
  EXPECT_EQ(pieces[pieces.size() - 2], "\xC3\xA9");
}

TEST(IncrementalDetokenizerTest, FlushStartsANewStream) {
  const Tokenizer& escaped = Gpt2Tokenizer(true);
  IncrementalDetokenizer detokenizer(escaped);
  for (int32_t id : PerByte(escaped, "x\\ud83d")) detokenizer.Push(id);
  EXPECT_EQ(detokenizer.Flush(), kFffd);
  std::string text;
  for (int32_t id : PerByte(escaped, "\\ude00y")) text += detokenizer.Push(id);
  text += detokenizer.Flush();
  EXPECT_EQ(text, kFffd + "y");  // the low half does not pair with the old stream
}

}  // namespace
}  // namespace fox
