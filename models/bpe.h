// GPT-2's byte-level byte-pair encoder: text is split into words by the GPT-2
// pattern (pretokenizer.h), each word's UTF-8 bytes become one symbol per byte,
// and adjacent symbols merge by rank until no listed pair is left. Vocabulary
// entries are spelled in GPT-2's byte-to-unicode alphabet (each byte as one
// printable code point, `Ġ` for a space), as vocab.json and tokenizer.json spell them.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "models/pair_rank_map.h"

namespace fox {

// A vocabulary and merge list as the files give them (see bpe_files.h).
struct BpeVocabulary {
  std::vector<std::pair<std::string, int32_t>> tokens;      // spelling, id
  std::vector<std::pair<std::string, std::string>> merges;  // in rank order
  std::vector<int32_t> special_ids;                         // added tokens marked special
  std::string vocab_source;                                 // file names for error messages
  std::string merges_source;
};

// The code point that spells `byte` in GPT-2's alphabet.
char32_t ByteToUnicode(uint8_t byte);

class BytePairEncoder {
 public:
  // Fails, naming the source file, when a byte has no token or a merge names
  // a token (or produces one) that is not in the vocabulary.
  static absl::StatusOr<std::unique_ptr<BytePairEncoder>> Create(const BpeVocabulary& vocabulary);

  // Appends the ids of well-formed UTF-8 `text` to `*ids`. Text that spells a
  // special token gets no special treatment. Thread-safe: the encoder is
  // immutable after Create() and each call keeps its scratch space to itself.
  void Encode(std::string_view text, std::vector<int32_t>* ids) const;

  // The raw bytes of token `id`; empty for an id outside the vocabulary.
  const std::string& TokenBytes(int32_t id) const;
  bool IsKnown(int32_t id) const { return id >= 0 && id < vocab_size() && known_[id]; }
  bool IsSpecial(int32_t id) const { return IsKnown(id) && special_[id]; }
  // The id of the token spelled `spelling` in GPT-2's alphabet.
  std::optional<int32_t> TokenId(std::string_view spelling) const;
  // One past the largest id.
  int vocab_size() const { return static_cast<int>(token_bytes_.size()); }

 private:
  class WordEncoder;
  class WordCache;

  BytePairEncoder() = default;

  std::vector<std::string> token_bytes_;  // by id
  std::vector<bool> known_;               // by id: listed in the vocabulary
  std::vector<bool> special_;             // by id
  std::unordered_map<std::string, int32_t> ids_by_spelling_;
  std::array<int32_t, 256> byte_ids_{};  // the one-byte token of each byte
  PairRankMap merges_;
};

}  // namespace fox
