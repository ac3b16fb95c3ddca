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

class Tokenizer {
 public:
  // Loads vocab.json + merges.txt, or tokenizer.json, and tokenizer_config.json
  // from a checkpoint directory. Any other tokenizer class is refused.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Load(const std::string& dir);
  ~Tokenizer();

  // Encodes UTF-8 text (invalid UTF-8 is an error). `add_bos` prepends BOS.
  absl::StatusOr<std::vector<int32_t>> Encode(std::string_view text, bool add_bos) const;
  // Decodes ids to text (BOS/EOS are dropped; unknown ids are an error).
  absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids) const;

  // The raw bytes of one token after byte-level decoding (before un-escaping).
  const std::string& TokenBytes(int32_t id) const;

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
