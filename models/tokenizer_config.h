// What a checkpoint's tokenizer_config.json says about its tokenizer: which
// mode (FOX_MODEL.md section 3), the context length, and the BOS/EOS tokens.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace fox {

struct TokenizerConfig {
  static constexpr int kDefaultModelMaxLength = 16384;

  bool json_escaped = false;
  int model_max_length = kDefaultModelMaxLength;
  std::string bos_token = "<|endoftext|>";
  std::string eos_token = "<|endoftext|>";
};

// Reads `path`; a missing file gives the defaults (plain GPT-2). A
// tokenizer_class other than JSONGPT2Tokenizer, GPT2Tokenizer and
// GPT2TokenizerFast is refused with a message naming it. A model_max_length
// that is absent, not a positive integer, or past 2^30 (Hugging Face writes
// 1e30 for "unlimited") gives the default.
absl::StatusOr<TokenizerConfig> ReadTokenizerConfig(const std::string& path);

}  // namespace fox
