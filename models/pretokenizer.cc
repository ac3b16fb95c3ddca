#include "models/pretokenizer.h"

#include <array>

#include "models/unicode_classes.h"
#include "models/utf8.h"

namespace fox {
namespace {

constexpr std::array<CharClass, 128> BuildAsciiTable() {
  std::array<CharClass, 128> table{};
  for (int c = 0; c < 128; ++c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
      table[c] = CharClass::kLetter;
    } else if (c >= '0' && c <= '9') {
      table[c] = CharClass::kNumber;
    } else if (c == ' ' || (c >= '\t' && c <= '\r')) {  // ASCII White_Space
      table[c] = CharClass::kSpace;
    } else {
      table[c] = CharClass::kOther;
    }
  }
  return table;
}

constexpr std::array<CharClass, 128> kAsciiClass = BuildAsciiTable();

// Class and byte length of the code point at text[pos].
inline CharClass ClassAt(std::string_view text, size_t pos, int* length) {
  const uint8_t byte = static_cast<uint8_t>(text[pos]);
  if (byte < 0x80) {
    *length = 1;
    return kAsciiClass[byte];
  }
  return ClassifyCodePoint(DecodeUtf8(text, pos, length));
}

}  // namespace

// 's 't 're 've 'm 'll 'd, lowercase only, whatever follows them.
size_t Gpt2WordSplitter::MatchContraction(size_t pos) const {
  const std::string_view rest = text_.substr(pos + 1);
  if (rest.empty()) return 0;
  const char c = rest[0];
  if (c == 's' || c == 't' || c == 'm' || c == 'd') return 2;
  const bool two_letters =
      rest.starts_with("re") || rest.starts_with("ve") || rest.starts_with("ll");
  return two_letters ? 3 : 0;
}

// End of the run of code points of class `char_class` starting at `pos`.
size_t Gpt2WordSplitter::SkipClass(size_t pos, CharClass char_class) const {
  while (pos < text_.size()) {
    int length = 0;
    if (ClassAt(text_, pos, &length) != char_class) break;
    pos += length;
  }
  return pos;
}

// `\s+(?!\S)|\s+` at `pos`, a whitespace code point. A run that reaches the end
// of the text is taken whole; otherwise the run gives back its last code point
// (which then prefixes the next word, as ` ?\p{L}+` and friends want), unless
// it is only one code point long, when `\s+` takes it alone.
size_t Gpt2WordSplitter::MatchWhitespace(size_t pos) const {
  size_t last_start = pos;
  size_t end = pos;
  while (end < text_.size()) {
    int length = 0;
    if (ClassAt(text_, end, &length) != CharClass::kSpace) break;
    last_start = end;
    end += length;
  }
  if (end == text_.size() || last_start == pos) return end;
  return last_start;
}

bool Gpt2WordSplitter::Next(std::string_view* word) {
  if (pos_ >= text_.size()) return false;
  const size_t start = pos_;
  const size_t contraction = text_[start] == '\'' ? MatchContraction(start) : 0;
  size_t end = 0;
  int length = 0;
  const CharClass first = ClassAt(text_, start, &length);
  if (contraction != 0) {
    end = start + contraction;
  } else if (first != CharClass::kSpace) {
    end = SkipClass(start + length, first);
  } else {
    int next_length = 0;
    const bool space_prefix = text_[start] == ' ' && start + 1 < text_.size();
    const CharClass next =
        space_prefix ? ClassAt(text_, start + 1, &next_length) : CharClass::kSpace;
    if (next != CharClass::kSpace) {
      end = SkipClass(start + 1 + next_length, next);
    } else {
      end = MatchWhitespace(start);
    }
  }
  *word = text_.substr(start, end - start);
  pos_ = end;
  return true;
}

}  // namespace fox
