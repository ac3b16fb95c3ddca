// Streaming detokenization: turns token ids into text pieces as they arrive.
// A piece never ends in the middle of a UTF-8 sequence or (for JSON-escaped
// tokenizers) of an escape; the pieces concatenate to Tokenizer::Decode.
#pragma once

#include <cstdint>
#include <string>

namespace fox {

class Tokenizer;

// One per stream; not thread-safe (a stream belongs to one thread at a time).
class IncrementalDetokenizer {
 public:
  // `tokenizer` must outlive this object.
  explicit IncrementalDetokenizer(const Tokenizer& tokenizer);

  // Appends one token; returns the text that became final (possibly empty).
  // Special tokens contribute nothing, as in Decode; so does an id outside
  // the vocabulary, which Decode would refuse (a model whose embedding is
  // padded past the vocabulary can sample one).
  std::string Push(int32_t token_id);
  // Ends the stream: returns whatever was held back, invalid parts as U+FFFD.
  // The object is then empty and may start a new stream.
  std::string Flush();

 private:
  // Moves what is settled from pending_bytes_ through pending_escaped_ to the
  // returned text; `final` settles everything.
  std::string Drain(bool final);

  const Tokenizer& tokenizer_;
  std::string pending_bytes_;    // decoded bytes not yet complete UTF-8
  std::string pending_escaped_;  // escaped text not yet complete (JSON mode)
};

}  // namespace fox
