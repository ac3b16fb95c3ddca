#include "models/tokenizer.h"

#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "models/json_escape.h"
#include "nlohmann/json.hpp"
#include "tests/models/gpt2_tokenizer_fixture.h"
#include "tests/models/tokenizer_test_corpus.h"
#include "tests/support/temp_dir.h"

namespace fox {
namespace {

using ::fox::testing::Gpt2PackageDir;
using ::fox::testing::Gpt2Tokenizer;
using ::fox::testing::ReadFileOrDie;
using ::fox::testing::TempDir;
using ::fox::testing::WriteFileOrDie;
using ::fox::testing::WriteGpt2TokenizerFiles;
using Ids = std::vector<int32_t>;

constexpr int32_t kEndOfText = 50256;

std::unique_ptr<Tokenizer> LoadOrDie(const std::string& dir) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::Load(dir);
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return tokenizer.ok() ? *std::move(tokenizer) : nullptr;
}

Ids EncodeOrDie(const Tokenizer& tokenizer, const std::string& text, bool add_bos = false) {
  absl::StatusOr<Ids> ids = tokenizer.Encode(text, add_bos);
  EXPECT_TRUE(ids.ok()) << ids.status();
  return ids.ok() ? *ids : Ids{};
}

// Expects `status` to fail with a message containing every one of `parts`.
void ExpectErrorMentions(const absl::Status& status, const std::vector<std::string>& parts) {
  EXPECT_FALSE(status.ok());
  for (const std::string& part : parts) {
    EXPECT_NE(status.message().find(part), std::string::npos)
        << "'" << part << "' not in: " << status;
  }
}

void WriteConfig(const std::string& dir, const nlohmann::json& config) {
  WriteFileOrDie(dir + "/tokenizer_config.json", config.dump());
}

TEST(TokenizerTest, LoadsTheReleasedLayout) {
  TempDir dir;
  WriteGpt2TokenizerFiles(dir.path(), /*json_escaped=*/true);
  const std::unique_ptr<Tokenizer> tokenizer = LoadOrDie(dir.path());
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_TRUE(tokenizer->json_escaped());
  EXPECT_EQ(tokenizer->vocab_size(), 50257);
  EXPECT_EQ(tokenizer->bos_id(), kEndOfText);
  EXPECT_EQ(tokenizer->eos_id(), kEndOfText);
  EXPECT_EQ(tokenizer->model_max_length(), 16384);
  EXPECT_TRUE(tokenizer->IsSpecial(kEndOfText));
  EXPECT_FALSE(tokenizer->IsSpecial(995));
  EXPECT_EQ(tokenizer->TokenBytes(kEndOfText), "<|endoftext|>");
}

TEST(TokenizerTest, TokenizerClassPicksTheMode) {
  const std::pair<nlohmann::json, bool> cases[] = {
      {{{"tokenizer_class", "JSONGPT2Tokenizer"}}, true},
      {{{"tokenizer_class", "GPT2Tokenizer"}}, false},
      {{{"tokenizer_class", "GPT2TokenizerFast"}}, false},
      {nlohmann::json::object(), false},
  };
  for (const auto& [config, escaped] : cases) {
    TempDir dir;
    WriteGpt2TokenizerFiles(dir.path(), true);
    WriteConfig(dir.path(), config);
    const std::unique_ptr<Tokenizer> tokenizer = LoadOrDie(dir.path());
    ASSERT_NE(tokenizer, nullptr) << config;
    EXPECT_EQ(tokenizer->json_escaped(), escaped) << config;
    // "é" is "\u00e9" to the escaped tokenizer, two bytes to the plain one.
    const Ids expected = escaped ? Ids{59, 84, 405, 68, 24} : Ids{2634};
    EXPECT_EQ(EncodeOrDie(*tokenizer, "\xC3\xA9"), expected) << config;
  }
  TempDir no_config;
  WriteGpt2TokenizerFiles(no_config.path(), true);
  std::filesystem::remove(no_config.File("tokenizer_config.json"));
  const std::unique_ptr<Tokenizer> plain = LoadOrDie(no_config.path());
  ASSERT_NE(plain, nullptr);
  EXPECT_FALSE(plain->json_escaped());
  EXPECT_EQ(plain->model_max_length(), 16384);
}

TEST(TokenizerTest, RefusesOtherTokenizerClasses) {
  TempDir dir;
  WriteGpt2TokenizerFiles(dir.path(), true);
  WriteConfig(dir.path(), {{"tokenizer_class", "LlamaTokenizer"}});
  ExpectErrorMentions(Tokenizer::Load(dir.path()).status(),
                      {"tokenizer_config.json", "LlamaTokenizer", "not supported"});
  WriteFileOrDie(dir.File("tokenizer_config.json"), "{not json");
  ExpectErrorMentions(Tokenizer::Load(dir.path()).status(), {"tokenizer_config.json"});
}

TEST(TokenizerTest, ModelMaxLengthFallsBackWhenAbsentOrAbsurd) {
  const std::pair<std::string, int> cases[] = {
      {R"({"model_max_length": 2048})", 2048},
      {R"({"model_max_length": 1000000000000000019884624838656})", 16384},  // HF's 1e30
      {R"({"model_max_length": 1e30})", 16384},
      {R"({"model_max_length": -5})", 16384},
      {R"({"model_max_length": 12.5})", 16384},
      {R"({"model_max_length": null})", 16384},
      {R"({})", 16384},
  };
  for (const auto& [config, expected] : cases) {
    TempDir dir;
    WriteGpt2TokenizerFiles(dir.path(), false);
    WriteFileOrDie(dir.File("tokenizer_config.json"), config);
    const std::unique_ptr<Tokenizer> tokenizer = LoadOrDie(dir.path());
    ASSERT_NE(tokenizer, nullptr) << config;
    EXPECT_EQ(tokenizer->model_max_length(), expected) << config;
  }
}

TEST(TokenizerTest, MissingFilesAreNamed) {
  TempDir empty;
  const absl::Status none = Tokenizer::Load(empty.path()).status();
  EXPECT_TRUE(absl::IsNotFound(none)) << none;
  ExpectErrorMentions(none, {empty.path(), "vocab.json", "merges.txt", "tokenizer.json"});

  TempDir no_merges;
  WriteGpt2TokenizerFiles(no_merges.path(), true);
  std::filesystem::remove(no_merges.File("merges.txt"));
  ExpectErrorMentions(Tokenizer::Load(no_merges.path()).status(), {no_merges.File("merges.txt")});

  TempDir no_vocab;
  WriteGpt2TokenizerFiles(no_vocab.path(), true);
  std::filesystem::remove(no_vocab.File("vocab.json"));
  ExpectErrorMentions(Tokenizer::Load(no_vocab.path()).status(), {no_vocab.File("vocab.json")});
}

TEST(TokenizerTest, MalformedFilesAreNamed) {
  TempDir dir;
  WriteGpt2TokenizerFiles(dir.path(), true);
  const std::string merges = ReadFileOrDie(dir.File("merges.txt"));
  WriteFileOrDie(dir.File("merges.txt"), merges + "Ġ t h\n");
  ExpectErrorMentions(Tokenizer::Load(dir.path()).status(),
                      {dir.File("merges.txt") + ":50002", "expected two tokens"});
  WriteFileOrDie(dir.File("merges.txt"), merges + "Ġ zzzzqqq\n");
  ExpectErrorMentions(Tokenizer::Load(dir.path()).status(),
                      {dir.File("merges.txt"), "merge 50001", "'zzzzqqq'", "vocab.json"});
  WriteFileOrDie(dir.File("merges.txt"), merges);

  const std::string vocab = ReadFileOrDie(dir.File("vocab.json"));
  WriteFileOrDie(dir.File("vocab.json"), vocab.substr(0, vocab.size() / 2));
  ExpectErrorMentions(Tokenizer::Load(dir.path()).status(), {dir.File("vocab.json"), "JSON"});

  // A vocabulary without the BOS/EOS token.
  nlohmann::json parsed = nlohmann::json::parse(vocab);
  parsed.erase("<|endoftext|>");
  WriteFileOrDie(dir.File("vocab.json"), parsed.dump());
  ExpectErrorMentions(Tokenizer::Load(dir.path()).status(), {"BOS", "<|endoftext|>"});
}

// Writes tokenizer.json in Hugging Face's layout from the GPT-2 files, with
// merges as "a b" strings or as ["a", "b"] arrays.
void WriteTokenizerJson(const std::string& dir, bool merges_as_arrays) {
  const nlohmann::json vocab =
      nlohmann::json::parse(ReadFileOrDie(Gpt2PackageDir() + "/encoder.json"));
  const std::string merges_text = ReadFileOrDie(Gpt2PackageDir() + "/vocab.bpe");
  nlohmann::json merges = nlohmann::json::array();
  size_t start = merges_text.find('\n') + 1;  // past "#version"
  while (start < merges_text.size()) {
    const size_t end = merges_text.find('\n', start);
    const std::string line = merges_text.substr(start, end - start);
    start = end == std::string::npos ? merges_text.size() : end + 1;
    if (line.empty()) continue;
    const size_t space = line.find(' ');
    if (merges_as_arrays) {
      merges.push_back({line.substr(0, space), line.substr(space + 1)});
    } else {
      merges.push_back(line);
    }
  }
  const nlohmann::json tokenizer = {
      {"version", "1.0"},
      {"added_tokens", {{{"id", kEndOfText}, {"content", "<|endoftext|>"}, {"special", true}}}},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}},
  };
  WriteFileOrDie(dir + "/tokenizer.json", tokenizer.dump());
}

TEST(TokenizerTest, TokenizerJsonGivesTheSameIds) {
  std::vector<std::string> corpus = ::fox::testing::TokenizerSamples();
  for (std::string& text : ::fox::testing::RandomTexts(200, 51)) corpus.push_back(text);
  for (bool escaped : {true, false}) {
    const Tokenizer& reference = Gpt2Tokenizer(escaped);
    for (bool arrays : {false, true}) {
      TempDir dir;
      WriteGpt2TokenizerFiles(dir.path(), escaped);
      std::filesystem::remove(dir.File("vocab.json"));
      std::filesystem::remove(dir.File("merges.txt"));
      WriteTokenizerJson(dir.path(), arrays);
      const std::unique_ptr<Tokenizer> tokenizer = LoadOrDie(dir.path());
      ASSERT_NE(tokenizer, nullptr);
      EXPECT_EQ(tokenizer->vocab_size(), 50257);
      EXPECT_EQ(tokenizer->json_escaped(), escaped);
      EXPECT_TRUE(tokenizer->IsSpecial(kEndOfText));
      for (const std::string& text : corpus) {
        ASSERT_EQ(EncodeOrDie(*tokenizer, text), EncodeOrDie(reference, text))
            << "escaped " << escaped << " arrays " << arrays << ": " << text;
      }
    }
  }
}

TEST(TokenizerTest, BosGoesFirstOnlyWhenAsked) {
  for (bool escaped : {true, false}) {
    const Tokenizer& tokenizer = Gpt2Tokenizer(escaped);
    EXPECT_EQ(EncodeOrDie(tokenizer, "", true), Ids{kEndOfText});
    EXPECT_EQ(EncodeOrDie(tokenizer, "", false), Ids{});
    for (const std::string& text : ::fox::testing::TokenizerSamples()) {
      const Ids plain = EncodeOrDie(tokenizer, text, false);
      Ids with_bos = {kEndOfText};
      with_bos.insert(with_bos.end(), plain.begin(), plain.end());
      EXPECT_EQ(EncodeOrDie(tokenizer, text, true), with_bos) << text;
    }
  }
  EXPECT_EQ(EncodeOrDie(Gpt2Tokenizer(false), "Hello world", true), (Ids{kEndOfText, 15496, 995}));
}

TEST(TokenizerTest, EndOfTextInTextIsOrdinaryText) {
  for (bool escaped : {true, false}) {
    const Ids ids = EncodeOrDie(Gpt2Tokenizer(escaped), "a<|endoftext|>b");
    EXPECT_EQ(ids, (Ids{64, 27, 91, 437, 1659, 5239, 91, 29, 65}));
    EXPECT_EQ(*Gpt2Tokenizer(escaped).Decode(ids), "a<|endoftext|>b");
  }
}

TEST(TokenizerTest, DecodeRoundTripsTheCorpus) {
  std::vector<std::string> corpus = ::fox::testing::TokenizerSamples();
  for (std::string& text : ::fox::testing::RandomTexts(500, 61)) corpus.push_back(text);
  for (bool escaped : {true, false}) {
    const Tokenizer& tokenizer = Gpt2Tokenizer(escaped);
    for (const std::string& text : corpus) {
      const absl::StatusOr<std::string> decoded =
          tokenizer.Decode(EncodeOrDie(tokenizer, text, /*add_bos=*/true));
      ASSERT_TRUE(decoded.ok()) << decoded.status();
      EXPECT_EQ(*decoded, text) << "escaped " << escaped;
    }
  }
}

TEST(TokenizerTest, DecodeDropsSpecialTokensAndRefusesUnknownIds) {
  for (bool escaped : {true, false}) {
    const Tokenizer& tokenizer = Gpt2Tokenizer(escaped);
    EXPECT_EQ(*tokenizer.Decode({kEndOfText, 15496, kEndOfText, 995, kEndOfText}), "Hello world");
    ExpectErrorMentions(tokenizer.Decode({15496, 50257}).status(), {"50257", "position 1"});
    ExpectErrorMentions(tokenizer.Decode({-1}).status(), {"-1", "position 0"});
  }
  // In escaped mode a special token between the halves of an escape does not
  // break it: the text users see skips the token entirely.
  const Tokenizer& escaped = Gpt2Tokenizer(true);
  const Ids e_acute = EncodeOrDie(escaped, "\xC3\xA9");  // \ u 00 e 9
  Ids split = e_acute;
  split.insert(split.begin() + 2, kEndOfText);
  EXPECT_EQ(*escaped.Decode(split), "\xC3\xA9");
}

TEST(TokenizerTest, EscapedDecodeRepairsWhatAModelMayEmit) {
  const Tokenizer& tokenizer = Gpt2Tokenizer(true);
  const Tokenizer& plain = Gpt2Tokenizer(false);
  const auto decode_escaped = [&](const std::string& escaped_text) {
    return *tokenizer.Decode(EncodeOrDie(plain, escaped_text));
  };
  EXPECT_EQ(decode_escaped("caf\\u00e9 \\ud83d\\ude00\\n"), "caf\xC3\xA9 \xF0\x9F\x98\x80\n");
  EXPECT_EQ(decode_escaped("bad \\q and \\ud83d"), "bad \xEF\xBF\xBDq and \xEF\xBF\xBD");
  // Raw non-ASCII (never produced by escaping) still passes through.
  EXPECT_EQ(decode_escaped("na\xC3\xAFve"), "na\xC3\xAFve");
  // A token sequence that ends inside a UTF-8 sequence.
  const Ids bytes = EncodeOrDie(plain, "\xF0\x93\x80\x80");  // U+13000, several tokens
  ASSERT_GT(bytes.size(), 1u);
  EXPECT_EQ(*plain.Decode(Ids(bytes.begin(), bytes.end() - 1)), "\xEF\xBF\xBD");
}

TEST(TokenizerTest, InvalidUtf8IsAnErrorNamingTheOffset) {
  for (bool escaped : {true, false}) {
    const Tokenizer& tokenizer = Gpt2Tokenizer(escaped);
    const absl::StatusOr<Ids> ids = tokenizer.Encode("ok caf\xC3 bad", true);
    EXPECT_TRUE(absl::IsInvalidArgument(ids.status())) << ids.status();
    ExpectErrorMentions(ids.status(), {"UTF-8", "offset 6", "0xc3"});
    ExpectErrorMentions(tokenizer.Encode("\xED\xA0\x80", false).status(), {"offset 0"});
    ExpectErrorMentions(tokenizer.Encode("abc\xFF", false).status(), {"offset 3", "0xff"});
  }
}

}  // namespace
}  // namespace fox
