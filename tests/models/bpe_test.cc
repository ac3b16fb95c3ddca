#include "models/bpe.h"

#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "models/bpe_files.h"
#include "models/pretokenizer.h"
#include "models/utf8.h"
#include "tests/models/reference_tools.h"
#include "tests/models/tokenizer_test_corpus.h"
#include "tests/support/temp_dir.h"

namespace fox {
namespace {

using ::fox::testing::Gpt2PackageDir;
using ::fox::testing::TempDir;
using ::fox::testing::WriteFileOrDie;

std::string Spell(std::string_view bytes) {
  std::string spelling;
  for (char b : bytes) AppendUtf8(ByteToUnicode(static_cast<uint8_t>(b)), &spelling);
  return spelling;
}

// A straight transcription of GPT-2's encoder.py bpe(): take the lowest-ranked
// adjacent pair, merge all its non-overlapping occurrences left to right, repeat.
class NaiveBpe {
 public:
  explicit NaiveBpe(const BpeVocabulary& vocabulary) {
    for (const auto& [spelling, id] : vocabulary.tokens) ids_[spelling] = id;
    for (size_t rank = 0; rank < vocabulary.merges.size(); ++rank) {
      ranks_[vocabulary.merges[rank]] = static_cast<int>(rank);
    }
  }

  std::vector<int32_t> EncodeWord(std::string_view bytes) const {
    std::vector<std::string> word;
    for (char b : bytes) word.push_back(Spell(std::string(1, b)));
    while (word.size() > 1) {
      int best = INT32_MAX;
      std::pair<std::string, std::string> bigram;
      for (size_t i = 0; i + 1 < word.size(); ++i) {
        const auto it = ranks_.find({word[i], word[i + 1]});
        if (it != ranks_.end() && it->second < best) {
          best = it->second;
          bigram = it->first;
        }
      }
      if (best == INT32_MAX) break;
      std::vector<std::string> merged;
      for (size_t i = 0; i < word.size();) {
        if (i + 1 < word.size() && word[i] == bigram.first && word[i + 1] == bigram.second) {
          merged.push_back(bigram.first + bigram.second);
          i += 2;
        } else {
          merged.push_back(word[i]);
          i += 1;
        }
      }
      word = std::move(merged);
    }
    std::vector<int32_t> ids;
    for (const std::string& token : word) ids.push_back(ids_.at(token));
    return ids;
  }

  std::vector<int32_t> Encode(const std::string& text) const {
    std::vector<int32_t> ids;
    Gpt2WordSplitter words(text);
    for (std::string_view word; words.Next(&word);) {
      for (int32_t id : EncodeWord(word)) ids.push_back(id);
    }
    return ids;
  }

 private:
  std::map<std::string, int32_t> ids_;
  std::map<std::pair<std::string, std::string>, int> ranks_;
};

const BpeVocabulary& Gpt2Vocabulary() {
  static const BpeVocabulary* vocabulary = [] {
    auto read =
        ReadVocabAndMerges(Gpt2PackageDir() + "/encoder.json", Gpt2PackageDir() + "/vocab.bpe");
    if (!read.ok()) {
      ADD_FAILURE() << read.status();
      std::abort();
    }
    return new BpeVocabulary(*std::move(read));
  }();
  return *vocabulary;
}

const BytePairEncoder& Gpt2Encoder() {
  static const BytePairEncoder* encoder = [] {
    auto created = BytePairEncoder::Create(Gpt2Vocabulary());
    if (!created.ok()) {
      ADD_FAILURE() << created.status();
      std::abort();
    }
    return created->release();
  }();
  return *encoder;
}

std::vector<int32_t> Encode(const BytePairEncoder& bpe, const std::string& text) {
  std::vector<int32_t> ids;
  bpe.Encode(text, &ids);
  return ids;
}

// The 256 one-byte tokens (ids 0..255) plus `extra` tokens and `merges`.
BpeVocabulary TinyVocabulary(const std::vector<std::string>& extra,
                             const std::vector<std::pair<std::string, std::string>>& merges) {
  BpeVocabulary vocabulary;
  for (int b = 0; b < 256; ++b) vocabulary.tokens.emplace_back(Spell(std::string(1, b)), b);
  for (const std::string& token : extra) {
    vocabulary.tokens.emplace_back(token, static_cast<int32_t>(vocabulary.tokens.size()));
  }
  vocabulary.merges = merges;
  vocabulary.vocab_source = "tiny-vocab";
  vocabulary.merges_source = "tiny-merges";
  return vocabulary;
}

TEST(BpeTest, ByteAlphabetIsGpt2s) {
  EXPECT_EQ(ByteToUnicode('A'), U'A');
  EXPECT_EQ(ByteToUnicode('!'), U'!');
  EXPECT_EQ(ByteToUnicode(0x00), char32_t{0x100});
  EXPECT_EQ(ByteToUnicode(' '), char32_t{0x120});   // Ġ
  EXPECT_EQ(ByteToUnicode('\n'), char32_t{0x10A});  // Ċ
  EXPECT_EQ(ByteToUnicode(0x7F), char32_t{0x121});
  EXPECT_EQ(ByteToUnicode(0xA0), char32_t{0x142});
  EXPECT_EQ(ByteToUnicode(0xA1), char32_t{0xA1});
  EXPECT_EQ(ByteToUnicode(0xAD), char32_t{0x143});  // Ń, the last one moved
  EXPECT_EQ(ByteToUnicode(0xFF), char32_t{0xFF});
}

TEST(BpeTest, KnownGpt2Ids) {
  const BytePairEncoder& bpe = Gpt2Encoder();
  EXPECT_EQ(bpe.vocab_size(), 50257);
  EXPECT_EQ(Encode(bpe, "Hello world"), (std::vector<int32_t>{15496, 995}));
  EXPECT_EQ(bpe.TokenId("<|endoftext|>"), 50256);
  EXPECT_EQ(bpe.TokenBytes(995), " world");
  EXPECT_EQ(bpe.TokenBytes(198), "\n");
  EXPECT_EQ(bpe.TokenBytes(-1), "");
  EXPECT_EQ(bpe.TokenBytes(50257), "");
  EXPECT_FALSE(bpe.IsKnown(50257));
}

TEST(BpeTest, MatchesTheReferenceMergeLoopOnRandomText) {
  const BytePairEncoder& bpe = Gpt2Encoder();
  const NaiveBpe naive(Gpt2Vocabulary());
  for (const std::string& text : ::fox::testing::RandomTexts(300, 41)) {
    ASSERT_EQ(Encode(bpe, text), naive.Encode(text)) << text;
  }
  for (const std::string& text : ::fox::testing::TokenizerSamples()) {
    ASSERT_EQ(Encode(bpe, text), naive.Encode(text)) << text;
  }
}

// Long single words (letters, digits, punctuation runs) drive the heap hard.
TEST(BpeTest, MatchesTheReferenceMergeLoopOnLongWords) {
  const BytePairEncoder& bpe = Gpt2Encoder();
  const NaiveBpe naive(Gpt2Vocabulary());
  const std::string alphabets[] = {"etaoinshrdlu", "0123456789", "!-=*#.,;:()[]", "ab"};
  std::mt19937 rng(5);
  for (int trial = 0; trial < 200; ++trial) {
    const std::string& alphabet = alphabets[trial % 4];
    std::string word = trial % 8 < 4 ? "" : " ";
    const int length = 1 + rng() % 400;
    for (int i = 0; i < length; ++i) word += alphabet[rng() % alphabet.size()];
    ASSERT_EQ(Encode(bpe, word), naive.EncodeWord(word)) << word;
  }
}

// A merge list that training could not produce: "xy x" ranks before "x y",
// so merging one pair at a time (instead of one rank per round) would turn
// "xyxy" into "xyx" + "y". The reference's rounds give "xy" + "xy".
TEST(BpeTest, MergesOneRankPerRoundLikeTheReference) {
  const BpeVocabulary vocabulary = TinyVocabulary({"xy", "xyx"}, {{"xy", "x"}, {"x", "y"}});
  auto bpe = BytePairEncoder::Create(vocabulary);
  ASSERT_TRUE(bpe.ok()) << bpe.status();
  const int32_t xy = 256;
  EXPECT_EQ(Encode(**bpe, "xyxy"), (std::vector<int32_t>{xy, xy}));
  EXPECT_EQ(Encode(**bpe, "xyxy"), NaiveBpe(vocabulary).EncodeWord("xyxy"));
}

TEST(BpeTest, OverlappingOccurrencesMergeLeftToRight) {
  const BpeVocabulary vocabulary = TinyVocabulary({"aa", "aaa"}, {{"a", "a"}, {"aa", "a"}});
  auto bpe = BytePairEncoder::Create(vocabulary);
  ASSERT_TRUE(bpe.ok()) << bpe.status();
  const NaiveBpe naive(vocabulary);
  for (int n = 1; n <= 12; ++n) {
    const std::string word(n, 'a');
    EXPECT_EQ(Encode(**bpe, word), naive.EncodeWord(word)) << word;
  }
  EXPECT_EQ(Encode(**bpe, "aaa"), (std::vector<int32_t>{257}));         // aa+a
  EXPECT_EQ(Encode(**bpe, "aaaaa"), (std::vector<int32_t>{256, 257}));  // aa, aa+a
}

// Enough distinct words to make the per-call cache grow and start over; the
// result must equal encoding each word on its own.
TEST(BpeTest, WordCacheNeverChangesTheResult) {
  const BytePairEncoder& bpe = Gpt2Encoder();
  std::mt19937 rng(8);
  std::string text;
  std::vector<int32_t> expected;
  for (int i = 0; i < 150000; ++i) {
    std::string word = " ";
    for (int n = i; n > 0 || word.size() == 1; n /= 26) word += static_cast<char>('a' + n % 26);
    if (rng() % 4 == 0) word = " the";  // repeats, served from the cache
    text += word;
    for (int32_t id : Encode(bpe, word)) expected.push_back(id);
  }
  EXPECT_EQ(Encode(bpe, text), expected);
}

TEST(BpeTest, ConcurrentEncodesAgree) {
  const BytePairEncoder& bpe = Gpt2Encoder();
  const std::vector<std::string> texts = ::fox::testing::RandomTexts(400, 77);
  std::vector<std::vector<int32_t>> expected;
  for (const std::string& text : texts) expected.push_back(Encode(bpe, text));
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 5; ++round) {
        for (size_t i = 0; i < texts.size(); ++i) {
          if (Encode(bpe, texts[(i + t * 97) % texts.size()]) !=
              expected[(i + t * 97) % texts.size()]) {
            ++mismatches[t];
          }
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

TEST(BpeTest, RefusesVocabulariesThatCannotWork) {
  BpeVocabulary no_bytes = TinyVocabulary({}, {});
  no_bytes.tokens.erase(no_bytes.tokens.begin() + 'q');
  auto bpe = BytePairEncoder::Create(no_bytes);
  EXPECT_FALSE(bpe.ok());
  EXPECT_NE(bpe.status().message().find("tiny-vocab: no token for byte 0x71"), std::string::npos)
      << bpe.status();

  bpe = BytePairEncoder::Create(TinyVocabulary({}, {{"a", "zz"}}));
  EXPECT_FALSE(bpe.ok());
  EXPECT_NE(bpe.status().message().find("tiny-merges: merge 1 ('a' 'zz'): its right token"),
            std::string::npos)
      << bpe.status();

  bpe = BytePairEncoder::Create(TinyVocabulary({}, {{"a", "b"}}));
  EXPECT_FALSE(bpe.ok());
  EXPECT_NE(bpe.status().message().find("the merged token is not in the vocabulary"),
            std::string::npos)
      << bpe.status();

  for (int32_t id : {-3, 1 << 30}) {
    BpeVocabulary bad_id = TinyVocabulary({}, {});
    bad_id.tokens.emplace_back("odd", id);
    bpe = BytePairEncoder::Create(bad_id);
    EXPECT_FALSE(bpe.ok()) << id;
    EXPECT_NE(bpe.status().message().find("tiny-vocab: token 'odd' has id"), std::string::npos)
        << bpe.status();
  }
}

// Errors from the file readers name the file (and the line for merges.txt).
TEST(BpeTest, FileReadersNameTheBadFile) {
  TempDir dir;
  const std::string vocab = dir.File("vocab.json");
  const std::string merges = dir.File("merges.txt");
  WriteFileOrDie(merges, "#version: 0.2\nĠ t\n");
  const std::pair<std::string, std::string> bad_vocabs[] = {
      {"{\"a\": 1,", "not valid JSON"},
      {"[1, 2]", "expected an object"},
      {"{\"a\": \"one\"}", "token 'a' has id \"one\""},
      {"{\"a\": -1}", "token 'a' has id -1"},
      {"{}", "empty"},
  };
  for (const auto& [contents, message] : bad_vocabs) {
    WriteFileOrDie(vocab, contents);
    const auto read = ReadVocabAndMerges(vocab, merges);
    ASSERT_FALSE(read.ok()) << contents;
    EXPECT_NE(read.status().message().find(vocab), std::string::npos) << read.status();
    EXPECT_NE(read.status().message().find(message), std::string::npos) << read.status();
  }

  WriteFileOrDie(vocab, "{\"a\": 0}");
  const std::pair<std::string, std::string> bad_merges[] = {
      {"#version: 0.2\nĠ t\na b c\n", ":3: expected two tokens"},
      {"onlyone\n", ":1: expected two tokens"},
      {"a  b\n", ":1: expected two tokens"},
  };
  for (const auto& [contents, message] : bad_merges) {
    WriteFileOrDie(merges, contents);
    const auto read = ReadVocabAndMerges(vocab, merges);
    ASSERT_FALSE(read.ok()) << contents;
    EXPECT_NE(read.status().message().find(merges + message), std::string::npos) << read.status();
  }

  const auto missing = ReadVocabAndMerges(dir.File("absent.json"), merges);
  EXPECT_TRUE(absl::IsNotFound(missing.status())) << missing.status();
  EXPECT_NE(missing.status().message().find("absent.json"), std::string::npos);

  const std::string json = dir.File("tokenizer.json");
  const std::pair<std::string, std::string> bad_jsons[] = {
      {"{}", "no \"model\" object"},
      {R"({"model": {"type": "WordPiece", "vocab": {}}})", "model type \"WordPiece\""},
      {R"({"model": {"vocab": {"a": 0}, "merges": {}}})", "model.merges is not an array"},
      {R"({"model": {"vocab": {"a": 0}, "merges": [["a"]]}})", "model.merges[0]"},
      {R"({"model": {"vocab": {"a": 0}, "merges": [7]}})", "model.merges[0] is 7"},
      {R"({"model": {"vocab": [], "merges": []}})", "model.vocab: expected an object"},
  };
  for (const auto& [contents, message] : bad_jsons) {
    WriteFileOrDie(json, contents);
    const auto read = ReadTokenizerJson(json);
    ASSERT_FALSE(read.ok()) << contents;
    EXPECT_NE(read.status().message().find(json), std::string::npos) << read.status();
    EXPECT_NE(read.status().message().find(message), std::string::npos) << read.status();
  }
}

}  // namespace
}  // namespace fox
