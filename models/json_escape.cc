#include "models/json_escape.h"

#include <cstring>
#include <string_view>

#include "models/utf8.h"

namespace fox {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

void AppendUnicodeEscape(char32_t unit, std::string* out) {
  out->append("\\u");
  for (int shift = 12; shift >= 0; shift -= 4) out->push_back(kHexDigits[(unit >> shift) & 0xF]);
}

// The short escapes: \c stands for kShortValues[kShortLetters.find(c)].
// json.dumps writes all but \/, which only the decoder meets.
constexpr std::string_view kShortLetters = "\"\\bfnrt/";
constexpr std::string_view kShortValues = "\"\\\b\f\n\r\t/";
constexpr size_t kNumDumpsShortEscapes = 7;

// The letter of the short escape json.dumps writes for `c`, or 0 for none.
char ShortEscape(char c) {
  const size_t i = kShortValues.substr(0, kNumDumpsShortEscapes).find(c);
  return i == std::string_view::npos ? 0 : kShortLetters[i];
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// What one escape at the start of `s` (s[0] == '\\') decodes to.
struct EscapeResult {
  bool needs_more = false;  // the meaning depends on characters not yet seen
  size_t consumed = 0;
  char32_t code_point = 0;  // appended as UTF-8
};

EscapeResult Replacement(size_t consumed) { return {false, consumed, 0xFFFD}; }

// Reads up to four hex digits of s[from..]. Returns how many it read before
// the text ended or a non-hex character came; `*value` gets their value.
int ReadHex4(std::string_view s, size_t from, char32_t* value) {
  *value = 0;
  int count = 0;
  while (count < 4 && from + count < s.size()) {
    const int digit = HexValue(s[from + count]);
    if (digit < 0) break;
    *value = (*value << 4) | digit;
    ++count;
  }
  return count;
}

// Whether s[from..] begins an escaped low surrogate (\uDC00..\uDFFF): 1 yes,
// 0 no, -1 the text ends before that is decided.
int StartsWithLowSurrogate(std::string_view s, size_t from, char32_t* low) {
  // Whether `c` can be character k of such an escape.
  const auto fits = [](int k, char c) {
    if (k == 0) return c == '\\';
    if (k == 1) return c == 'u';
    const int digit = HexValue(c);
    if (k == 2) return digit == 0xD;
    if (k == 3) return digit >= 0xC;  // DC..DF
    return digit >= 0;
  };
  for (int k = 0; k < 6; ++k) {
    if (from + k >= s.size()) return -1;
    if (!fits(k, s[from + k])) return 0;
  }
  ReadHex4(s, from + 2, low);
  return 1;
}

EscapeResult ParseUnicodeEscape(std::string_view s, bool final) {
  char32_t unit = 0;
  const int digits = ReadHex4(s, 2, &unit);
  if (digits < 4) {
    if (static_cast<size_t>(2 + digits) == s.size() && !final) return {.needs_more = true};
    return Replacement(2 + digits);
  }
  if (unit >= 0xDC00 && unit <= 0xDFFF) return Replacement(6);  // low without high
  if (unit < 0xD800 || unit > 0xDBFF) return {false, 6, unit};
  char32_t low = 0;
  switch (StartsWithLowSurrogate(s, 6, &low)) {
    case 1:
      return {false, 12, 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)};
    case -1:
      if (!final) return {.needs_more = true};
      return Replacement(6);
    default:
      return Replacement(6);
  }
}

EscapeResult ParseEscape(std::string_view s, bool final) {
  if (s.size() < 2) return final ? Replacement(1) : EscapeResult{.needs_more = true};
  if (s[1] == 'u') return ParseUnicodeEscape(s, final);
  const size_t i = kShortLetters.find(s[1]);
  if (i == std::string_view::npos) return Replacement(1);
  return {false, 2, static_cast<char32_t>(kShortValues[i])};
}

}  // namespace

void AppendJsonEscaped(std::string_view text, std::string* out) {
  out->reserve(out->size() + text.size() + text.size() / 8);
  size_t pos = 0;
  size_t copied_up_to = 0;
  while (pos < text.size()) {
    const unsigned char c = static_cast<unsigned char>(text[pos]);
    if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
      ++pos;
      continue;
    }
    out->append(text.data() + copied_up_to, pos - copied_up_to);
    int length = 1;
    if (const char short_form = ShortEscape(static_cast<char>(c)); short_form != 0) {
      out->push_back('\\');
      out->push_back(short_form);
    } else if (c < 0x80) {
      AppendUnicodeEscape(c, out);
    } else {
      const char32_t code_point = DecodeUtf8(text, pos, &length);
      if (code_point < 0x10000) {
        AppendUnicodeEscape(code_point, out);
      } else {
        const char32_t offset = code_point - 0x10000;
        AppendUnicodeEscape(0xD800 + (offset >> 10), out);
        AppendUnicodeEscape(0xDC00 + (offset & 0x3FF), out);
      }
    }
    pos += length;
    copied_up_to = pos;
  }
  out->append(text.data() + copied_up_to, pos - copied_up_to);
}

std::string JsonEscape(std::string_view text) {
  std::string out;
  AppendJsonEscaped(text, &out);
  return out;
}

size_t AppendJsonUnescaped(std::string_view escaped, bool final, std::string* out) {
  size_t pos = 0;
  while (pos < escaped.size()) {
    const void* found = std::memchr(escaped.data() + pos, '\\', escaped.size() - pos);
    const size_t backslash =
        found ? static_cast<const char*>(found) - escaped.data() : escaped.size();
    out->append(escaped.data() + pos, backslash - pos);
    pos = backslash;
    if (pos == escaped.size()) break;
    const EscapeResult result = ParseEscape(escaped.substr(pos), final);
    if (result.needs_more) return pos;
    AppendUtf8(result.code_point, out);
    pos += result.consumed;
  }
  return pos;
}

std::string JsonUnescape(std::string_view escaped) {
  std::string out;
  AppendJsonUnescaped(escaped, /*final=*/true, &out);
  return out;
}

}  // namespace fox
