#include "models/tokenizer.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "models/bpe.h"
#include "models/bpe_files.h"
#include "models/json_escape.h"
#include "models/tokenizer_config.h"
#include "models/utf8.h"

namespace fox {
namespace {

namespace fs = std::filesystem;

absl::StatusOr<BpeVocabulary> ReadVocabulary(const std::string& dir) {
  const std::string vocab = (fs::path(dir) / "vocab.json").string();
  const std::string merges = (fs::path(dir) / "merges.txt").string();
  const std::string tokenizer_json = (fs::path(dir) / "tokenizer.json").string();
  const bool has_vocab = fs::exists(vocab);
  const bool has_merges = fs::exists(merges);
  if (has_vocab && has_merges) return ReadVocabAndMerges(vocab, merges);
  if (fs::exists(tokenizer_json)) return ReadTokenizerJson(tokenizer_json);
  if (has_vocab || has_merges) {
    return absl::NotFoundError(absl::StrCat("missing ", has_vocab ? merges : vocab,
                                            " (and no tokenizer.json to use instead)"));
  }
  return absl::NotFoundError(absl::StrCat(
      "no tokenizer in ", dir, ": expected vocab.json and merges.txt, or tokenizer.json"));
}

absl::StatusOr<int32_t> SpecialTokenId(const BytePairEncoder& bpe, const std::string& name,
                                       const char* role, const std::string& dir) {
  const std::optional<int32_t> id = bpe.TokenId(name);
  if (!id) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir, ": the ", role, " token '", name, "' is not in the vocabulary"));
  }
  return *id;
}

}  // namespace

Tokenizer::~Tokenizer() = default;

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Load(const std::string& dir) {
  absl::StatusOr<TokenizerConfig> config =
      ReadTokenizerConfig((fs::path(dir) / "tokenizer_config.json").string());
  if (!config.ok()) return config.status();
  absl::StatusOr<BpeVocabulary> vocabulary = ReadVocabulary(dir);
  if (!vocabulary.ok()) return vocabulary.status();

  // The BOS/EOS tokens are special even when the files do not say so.
  std::unique_ptr<Tokenizer> tokenizer(new Tokenizer());
  for (const std::string* name : {&config->bos_token, &config->eos_token}) {
    for (const auto& [spelling, id] : vocabulary->tokens) {
      if (spelling == *name) vocabulary->special_ids.push_back(id);
    }
  }
  absl::StatusOr<std::unique_ptr<BytePairEncoder>> bpe = BytePairEncoder::Create(*vocabulary);
  if (!bpe.ok()) return bpe.status();
  tokenizer->bpe_ = *std::move(bpe);

  absl::StatusOr<int32_t> bos = SpecialTokenId(*tokenizer->bpe_, config->bos_token, "BOS", dir);
  if (!bos.ok()) return bos.status();
  absl::StatusOr<int32_t> eos = SpecialTokenId(*tokenizer->bpe_, config->eos_token, "EOS", dir);
  if (!eos.ok()) return eos.status();
  tokenizer->bos_id_ = *bos;
  tokenizer->eos_id_ = *eos;
  tokenizer->json_escaped_ = config->json_escaped;
  tokenizer->model_max_length_ = config->model_max_length;
  return tokenizer;
}

absl::StatusOr<std::vector<int32_t>> Tokenizer::Encode(std::string_view text, bool add_bos) const {
  if (const size_t bad = FindInvalidUtf8(text); bad != std::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("text is not valid UTF-8: byte 0x",
                     absl::Hex(static_cast<uint8_t>(text[bad]), absl::kZeroPad2), " at offset ",
                     bad, " does not start or continue a well-formed sequence"));
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 2);
  if (add_bos) ids.push_back(bos_id_);
  if (json_escaped_) {
    bpe_->Encode(JsonEscape(text), &ids);
  } else {
    bpe_->Encode(text, &ids);
  }
  return ids;
}

absl::StatusOr<std::string> Tokenizer::Decode(absl::Span<const int32_t> ids) const {
  std::string bytes;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!bpe_->IsKnown(ids[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("token id ", ids[i], " at position ", i, " is not in the vocabulary"));
    }
    if (!bpe_->IsSpecial(ids[i])) bytes += bpe_->TokenBytes(ids[i]);
  }
  std::string text;
  text.reserve(bytes.size());
  AppendUtf8Lossy(bytes, /*final=*/true, &text);
  return json_escaped_ ? JsonUnescape(text) : text;
}

const std::string& Tokenizer::TokenBytes(int32_t id) const { return bpe_->TokenBytes(id); }
bool Tokenizer::IsSpecial(int32_t id) const { return bpe_->IsSpecial(id); }
bool Tokenizer::IsKnown(int32_t id) const { return bpe_->IsKnown(id); }
int Tokenizer::vocab_size() const { return bpe_->vocab_size(); }

}  // namespace fox
