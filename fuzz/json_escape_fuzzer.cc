// JSON escaping (models/json_escape.h), the tokenizer's LongCrawl64 quirk.
// Properties, on any bytes:
//  - valid UTF-8 s: JsonEscape(s) is printable ASCII, equals what a JSON
//    library writes for s with ASCII output (nlohmann's dump with
//    ensure_ascii, which escapes as json.dumps does), and unescapes back to s,
//    in one call and in pieces;
//  - any text t (made valid UTF-8 first, as decoded model output is):
//    JsonUnescape(t) is valid UTF-8; unescaping t in pieces, carrying each
//    unconsumed tail over, equals one call; where t is a valid JSON string
//    body, the result is what a JSON parser reads.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_support.h"
#include "models/json_escape.h"
#include "models/utf8.h"
#include "nlohmann/json.hpp"

namespace fox::fuzz {
namespace {

// Unescapes `escaped` in pieces whose lengths (1 to 8) come from `lengths`,
// as the incremental detokenizer feeds it.
std::string UnescapeInPieces(std::string_view escaped, std::string_view lengths) {
  std::string out;
  std::string carry;
  size_t pos = 0;
  size_t k = 0;
  while (pos < escaped.size()) {
    const size_t take =
        1 + (lengths.empty() ? 0 : static_cast<unsigned char>(lengths[k++ % lengths.size()]) % 8);
    carry.append(escaped.substr(pos, take));
    pos += std::min(take, escaped.size() - pos);
    const size_t consumed = AppendJsonUnescaped(carry, /*final=*/false, &out);
    FOX_FUZZ_CHECK(consumed <= carry.size(), Escaped(carry));
    carry.erase(0, consumed);
  }
  const size_t consumed = AppendJsonUnescaped(carry, /*final=*/true, &out);
  FOX_FUZZ_CHECK(consumed == carry.size(), Escaped(carry));
  return out;
}

void CheckEscapeRoundTrip(std::string_view text) {
  const std::string escaped = JsonEscape(text);
  for (const char c : escaped) {
    FOX_FUZZ_CHECK(c >= 0x20 && c < 0x7f, Escaped(escaped));
  }
  const std::string dumped = nlohmann::json(std::string(text)).dump(-1, ' ', /*ensure_ascii=*/true);
  FOX_FUZZ_CHECK(dumped == absl::StrCat("\"", escaped, "\""),
                 absl::StrCat(Escaped(text), " escaped ", Escaped(escaped), ", json ", dumped));
  const std::string back = JsonUnescape(escaped);
  FOX_FUZZ_CHECK(back == text, absl::StrCat(Escaped(text), " came back ", Escaped(back)));
  const std::string pieces = UnescapeInPieces(escaped, text);
  FOX_FUZZ_CHECK(pieces == text, absl::StrCat(Escaped(text), " came back ", Escaped(pieces)));
}

void CheckUnescape(std::string_view escaped, std::string_view lengths) {
  const std::string whole = JsonUnescape(escaped);
  FOX_FUZZ_CHECK(FindInvalidUtf8(whole) == std::string_view::npos, Escaped(escaped));
  const std::string pieces = UnescapeInPieces(escaped, lengths);
  FOX_FUZZ_CHECK(pieces == whole, absl::StrCat(Escaped(escaped), ": whole ", Escaped(whole),
                                               ", in pieces ", Escaped(pieces)));
  // nlohmann's lexer takes a NUL byte for the end of the input, so with one
  // in `escaped` it may read a string that stops at an unescaped quote
  // before it; the comparison only holds for text without NUL.
  if (escaped.find('\0') != std::string_view::npos) return;
  const nlohmann::json parsed =
      nlohmann::json::parse("\"" + std::string(escaped) + "\"", nullptr, /*allow_exceptions=*/false);
  if (parsed.is_string()) {
    FOX_FUZZ_CHECK(parsed.get<std::string>() == whole,
                   absl::StrCat(Escaped(escaped), ": ours ", Escaped(whole), ", json ",
                                Escaped(parsed.get<std::string>())));
  }
}

}  // namespace
}  // namespace fox::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  if (fox::FindInvalidUtf8(input) == std::string_view::npos) {
    fox::fuzz::CheckEscapeRoundTrip(input);
  }
  std::string text;
  fox::AppendUtf8Lossy(input, /*final=*/true, &text);
  fox::fuzz::CheckUnescape(text, input);
  return 0;
}
