// LongCrawl64's escaping (FOX_MODEL.md section 3): the released FoX models were
// trained on text passed through Python's json.dumps(s)[1:-1] (ASCII output),
// so the tokenizer escapes before BPE and unescapes after decoding.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace fox {

// Appends json.dumps(text)[1:-1] to `*out`: `"` and `\` backslashed; \b \f \n
// \r \t short; other controls, DEL and all non-ASCII as \uXXXX in lowercase
// hex, with a UTF-16 surrogate pair above U+FFFF. `text` must be well-formed UTF-8.
void AppendJsonEscaped(std::string_view text, std::string* out);
std::string JsonEscape(std::string_view text);

// The inverse, lenient and streaming. `escaped` is well-formed UTF-8 (decoded
// model output); appends its unescaped text to `*out` and returns how many
// bytes it consumed. Rules, chosen so that a model's stray output still decodes:
//  - \" \\ \/ \b \f \n \r \t and \uXXXX (either case of hex) as in JSON; a high
//    surrogate followed by an escaped low one is one code point;
//  - a lone surrogate, or \u with fewer than four hex digits, becomes U+FFFD
//    (the characters after it are read normally);
//  - a backslash before any other character becomes U+FFFD, the character stays;
//  - any character that is not a backslash passes through.
// Unless `final`, a trailing escape whose meaning depends on characters not yet
// seen (a lone `\`, `\u` with < 4 digits, a high surrogate that might get its low
// one) is left unconsumed. Feeding a text in pieces, carrying each piece's
// unconsumed tail over to the next and ending with `final`, gives the same
// output as one call on the whole text.
size_t AppendJsonUnescaped(std::string_view escaped, bool final, std::string* out);
std::string JsonUnescape(std::string_view escaped);

}  // namespace fox
