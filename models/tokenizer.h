// The tokenizer that ships with a FoX checkpoint: GPT-2 byte-level BPE, with
// LongCrawl64's JSON escaping applied before BPE (and undone after decoding)
// when tokenizer_config.json names JSONGPT2Tokenizer (FOX_MODEL.md section 3).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace fox {

class BytePairEncoder;

// Immutable after Load(); every const method may be called from many threads.
class Tokenizer {
 public:
  // Loads a checkpoint directory's tokenizer: vocab.json + merges.txt (what
  // the released checkpoints' tokenizer class reads), else tokenizer.json; and
  // tokenizer_config.json, whose tokenizer_class picks the mode:
  // JSONGPT2Tokenizer -> escaped; GPT2Tokenizer, GPT2TokenizerFast, or no
  // config -> plain byte-level BPE; any other class is refused.
  // model_max_length comes from the config too (16384 when absent or absurd).
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Load(const std::string& dir);
  ~Tokenizer();

  // Encodes UTF-8 text (invalid UTF-8 is an InvalidArgument error naming the
  // byte offset). `add_bos` prepends BOS. Text that spells a special token,
  // such as "<|endoftext|>", is encoded as ordinary text, as GPT-2's reference
  // encoder does: only ids, never text, can carry a special token.
  absl::StatusOr<std::vector<int32_t>> Encode(std::string_view text, bool add_bos) const;
  // Decodes ids to the text users see. Special tokens (BOS/EOS, and added
  // tokens marked special) contribute nothing; ill-formed UTF-8 and, when
  // escaped, invalid escapes and lone surrogates become U+FFFD (see
  // json_escape.h). Ids outside the vocabulary are an InvalidArgument error.
  absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids) const;

  // The raw bytes of one token after byte-level decoding (before un-escaping);
  // a special token's own spelling; empty for an id outside the vocabulary.
  const std::string& TokenBytes(int32_t id) const;
  // Whether `id` is a token Decode() skips.
  bool IsSpecial(int32_t id) const;
  // Whether `id` names a token of the vocabulary.
  bool IsKnown(int32_t id) const;

  int vocab_size() const;
  int32_t bos_id() const { return bos_id_; }
  int32_t eos_id() const { return eos_id_; }
  bool json_escaped() const { return json_escaped_; }
  int model_max_length() const { return model_max_length_; }

 private:
  Tokenizer() = default;

  std::unique_ptr<BytePairEncoder> bpe_;
  int32_t bos_id_ = 50256;
  int32_t eos_id_ = 50256;
  bool json_escaped_ = false;
  int model_max_length_ = 16384;
};

}  // namespace fox
