// GPT-2's pre-tokenizer: splits text into the words that BPE then encodes one
// at a time. It matches the pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// by hand (one left-to-right pass, no backtracking engine), with \s meaning
// Unicode White_Space (see unicode_classes.h).
#pragma once

#include <string_view>

#include "models/unicode_classes.h"

namespace fox {

// Iterates over the words of `text`, which must be well-formed UTF-8 and must
// outlive the splitter. The words tile the text: concatenated they give it back.
//
//   Gpt2WordSplitter words(text);
//   for (std::string_view word; words.Next(&word);) ...
class Gpt2WordSplitter {
 public:
  explicit Gpt2WordSplitter(std::string_view text) : text_(text) {}

  // Stores the next word in `*word`; false at the end of the text.
  bool Next(std::string_view* word);

 private:
  size_t MatchContraction(size_t pos) const;
  size_t SkipClass(size_t pos, CharClass char_class) const;
  size_t MatchWhitespace(size_t pos) const;

  std::string_view text_;
  size_t pos_ = 0;
};

}  // namespace fox
