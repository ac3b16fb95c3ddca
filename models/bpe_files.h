// Reads a byte-level BPE vocabulary from a checkpoint's files: the GPT-2 pair
// vocab.json + merges.txt, or a Hugging Face tokenizer.json. Errors name the file.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "models/bpe.h"

namespace fox {

// vocab.json: {"spelling": id, ...}. merges.txt: one "left right" pair per
// line in rank order, after an optional "#version" line; blank lines are skipped.
absl::StatusOr<BpeVocabulary> ReadVocabAndMerges(const std::string& vocab_path,
                                                 const std::string& merges_path);

// tokenizer.json with model.type "BPE": model.vocab as above, model.merges as
// "left right" strings or as [left, right] arrays, and added_tokens whose
// `special` ones are recorded as special ids.
absl::StatusOr<BpeVocabulary> ReadTokenizerJson(const std::string& path);

// The whole file, or NotFound naming it.
absl::StatusOr<std::string> ReadTextFile(const std::string& path);

}  // namespace fox
