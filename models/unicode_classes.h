// The character classes of GPT-2's pre-tokenizer pattern: \p{L} (letters),
// \p{N} (numbers), \s (Unicode White_Space) and everything else. Answers come
// from ICU, through a table for the Basic Multilingual Plane built on first
// use, so classifying is a load on the hot path of encoding.
#pragma once

#include <cstdint>

namespace fox {

enum class CharClass : uint8_t {
  kLetter,  // general category L*
  kNumber,  // general category N*
  kSpace,   // White_Space property
  kOther,   // none of the above
};

// Thread-safe.
CharClass ClassifyCodePoint(char32_t c);

}  // namespace fox
