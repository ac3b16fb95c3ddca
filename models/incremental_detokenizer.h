// Streaming detokenization: turns token ids into text pieces as they arrive.
// A piece never ends in the middle of a UTF-8 sequence or (for JSON-escaped
// tokenizers) of an escape; the pieces concatenate to Tokenizer::Decode.
#pragma once

#include <cstdint>
#include <string>

namespace fox {

class Tokenizer;

class IncrementalDetokenizer {
 public:
  // `tokenizer` must outlive this object.
  explicit IncrementalDetokenizer(const Tokenizer& tokenizer);

  // Appends one token; returns the text that became final (possibly empty).
  std::string Push(int32_t token_id);
  // Ends the stream: returns whatever was held back, invalid parts as U+FFFD.
  std::string Flush();

 private:
  const Tokenizer& tokenizer_;
  std::string pending_bytes_;    // decoded bytes not yet complete UTF-8
  std::string pending_escaped_;  // escaped text not yet complete (JSON mode)
};

}  // namespace fox
