// UTF-8 checks and lossy decoding shared by the tokenizer's two directions:
// encode refuses ill-formed input, decode (which may see any bytes a model
// emits) replaces it. Lossy decoding replaces each maximal ill-formed subpart
// with one U+FFFD (Unicode 15, section 3.9; the WHATWG and Python rule), which
// is what makes streaming and one-shot decoding agree byte for byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace fox {

inline constexpr char kReplacementUtf8[] = "\xEF\xBF\xBD";  // U+FFFD

// Offset of the first byte that does not start or continue a well-formed
// sequence (overlongs, surrogates and code points past U+10FFFF included), or
// std::string_view::npos when `text` is well-formed.
size_t FindInvalidUtf8(std::string_view text);

// Decodes the code point at `text[pos]`, which must start a well-formed
// sequence; stores its length in bytes in `*length`.
char32_t DecodeUtf8(std::string_view text, size_t pos, int* length);

void AppendUtf8(char32_t code_point, std::string* out);

// Appends the decoding of `bytes` to `*out`, ill-formed parts as U+FFFD, and
// returns how many bytes it consumed. Unless `final`, a trailing sequence that
// is incomplete but could still become well-formed is left unconsumed, so the
// caller can retry once more bytes arrive.
size_t AppendUtf8Lossy(std::string_view bytes, bool final, std::string* out);

}  // namespace fox
