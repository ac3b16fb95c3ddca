#include "models/bpe.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "models/utf8.h"

namespace fox {
namespace {

// Ids index arrays, so a stray huge id must not size them; real vocabularies
// stay far below this.
constexpr int32_t kMaxVocabSize = 1 << 24;

// GPT-2 keeps printable Latin-1 bytes as themselves and moves the others
// (controls, space, DEL, NBSP, soft hyphen) to U+0100 onwards, in byte order,
// so that every token is spelled with visible characters.
bool IsPrintableByte(int b) {
  return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

struct ByteAlphabet {
  std::array<char32_t, 256> to_unicode{};
  std::array<int16_t, 512> to_byte{};  // -1 where a code point spells no byte
};

const ByteAlphabet& Alphabet() {
  static const ByteAlphabet alphabet = [] {
    ByteAlphabet a;
    a.to_byte.fill(-1);
    int next_moved = 0;
    for (int b = 0; b < 256; ++b) {
      a.to_unicode[b] = IsPrintableByte(b) ? b : 256 + next_moved++;
      a.to_byte[a.to_unicode[b]] = static_cast<int16_t>(b);
    }
    return a;
  }();
  return alphabet;
}

// The bytes a vocabulary spelling stands for. Code points outside the
// alphabet (possible in added tokens) stand for their own UTF-8.
std::string SpellingToBytes(std::string_view spelling) {
  const ByteAlphabet& alphabet = Alphabet();
  std::string bytes;
  bytes.reserve(spelling.size());
  for (size_t pos = 0; pos < spelling.size();) {
    int length = 0;
    const char32_t c = DecodeUtf8(spelling, pos, &length);
    const int byte = c < alphabet.to_byte.size() ? alphabet.to_byte[c] : -1;
    if (byte >= 0) {
      bytes.push_back(static_cast<char>(byte));
    } else {
      bytes.append(spelling.substr(pos, length));
    }
    pos += length;
  }
  return bytes;
}

std::string ByteSpelling(uint8_t byte) {
  std::string spelling;
  AppendUtf8(ByteToUnicode(byte), &spelling);
  return spelling;
}

}  // namespace

char32_t ByteToUnicode(uint8_t byte) { return Alphabet().to_unicode[byte]; }

absl::StatusOr<std::unique_ptr<BytePairEncoder>> BytePairEncoder::Create(
    const BpeVocabulary& vocabulary) {
  std::unique_ptr<BytePairEncoder> bpe(new BytePairEncoder());
  int32_t max_id = -1;
  for (const auto& [spelling, id] : vocabulary.tokens) {
    if (id < 0 || id >= kMaxVocabSize) {
      return absl::InvalidArgumentError(absl::StrCat(vocabulary.vocab_source, ": token '", spelling,
                                                     "' has id ", id, ", expected 0 <= id < ",
                                                     kMaxVocabSize));
    }
    if (FindInvalidUtf8(spelling) != std::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(vocabulary.vocab_source, ": token ", id, " is not valid UTF-8"));
    }
    max_id = std::max(max_id, id);
  }
  bpe->token_bytes_.resize(max_id + 1);
  bpe->known_.assign(max_id + 1, false);
  bpe->special_.assign(max_id + 1, false);
  bpe->ids_by_spelling_.reserve(vocabulary.tokens.size());
  for (const auto& [spelling, id] : vocabulary.tokens) {
    bpe->token_bytes_[id] = SpellingToBytes(spelling);
    bpe->known_[id] = true;
    bpe->ids_by_spelling_[spelling] = id;
  }
  for (int32_t id : vocabulary.special_ids) {
    if (bpe->IsKnown(id)) bpe->special_[id] = true;
  }
  for (int b = 0; b < 256; ++b) {
    const std::optional<int32_t> id = bpe->TokenId(ByteSpelling(b));
    if (!id) {
      return absl::InvalidArgumentError(absl::StrCat(
          vocabulary.vocab_source, ": no token for byte 0x", absl::Hex(b, absl::kZeroPad2),
          " (spelled '", ByteSpelling(b), "'): not a byte-level BPE vocabulary"));
    }
    bpe->byte_ids_[b] = *id;
  }
  bpe->merges_.Reserve(vocabulary.merges.size());
  for (size_t rank = 0; rank < vocabulary.merges.size(); ++rank) {
    const auto& [left, right] = vocabulary.merges[rank];
    const std::optional<int32_t> left_id = bpe->TokenId(left);
    const std::optional<int32_t> right_id = bpe->TokenId(right);
    const std::optional<int32_t> merged_id = bpe->TokenId(left + right);
    const char* missing = !left_id     ? "its left token"
                          : !right_id  ? "its right token"
                          : !merged_id ? "the merged token"
                                       : nullptr;
    if (missing != nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          vocabulary.merges_source, ": merge ", rank + 1, " ('", left, "' '", right,
          "'): ", missing, " is not in the vocabulary (", vocabulary.vocab_source, ")"));
    }
    bpe->merges_.Insert(*left_id, *right_id, {static_cast<int32_t>(rank), *merged_id});
  }
  return bpe;
}

const std::string& BytePairEncoder::TokenBytes(int32_t id) const {
  static const std::string* const kEmpty = new std::string();
  return IsKnown(id) ? token_bytes_[id] : *kEmpty;
}

std::optional<int32_t> BytePairEncoder::TokenId(std::string_view spelling) const {
  const auto it = ids_by_spelling_.find(std::string(spelling));
  if (it == ids_by_spelling_.end()) return std::nullopt;
  return it->second;
}

}  // namespace fox
