// The checkpoint tokenizer (models/tokenizer.h), GPT-2 in both modes: plain
// byte-level BPE and the released checkpoints' JSON-escaped one (FOX_MODEL.md
// section 3). The first input byte picks the mode and add_bos; the rest is
// the text, and also read as little-endian 16-bit token ids.
// Properties:
//  - valid UTF-8 s: Encode succeeds with ids in the vocabulary, BOS first
//    when asked and nowhere else (text spelling "<|endoftext|>" is ordinary
//    text), and Decode(Encode(s)) == s;
//  - invalid UTF-8: Encode is InvalidArgument;
//  - any ids (see TokenId in fuzz_support.h): Decode succeeds exactly when every id is in the vocabulary,
//    and its text is valid UTF-8.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_support.h"
#include "models/utf8.h"

namespace fox::fuzz {
namespace {

void CheckRoundTrip(const Tokenizer& tokenizer, std::string_view text, bool add_bos) {
  const absl::StatusOr<std::vector<int32_t>> ids = tokenizer.Encode(text, add_bos);
  if (FindInvalidUtf8(text) != std::string_view::npos) {
    FOX_FUZZ_CHECK(!ids.ok() && ids.status().code() == absl::StatusCode::kInvalidArgument,
                   Escaped(text));
    return;
  }
  FOX_FUZZ_CHECK(ids.ok(), absl::StrCat(Escaped(text), " -> ", ids.status().ToString()));
  for (size_t i = 0; i < ids->size(); ++i) {
    const int32_t id = (*ids)[i];
    FOX_FUZZ_CHECK(tokenizer.IsKnown(id), absl::StrCat(Escaped(text), " id ", id));
    const bool is_bos = add_bos && i == 0;
    FOX_FUZZ_CHECK(is_bos ? id == tokenizer.bos_id() : !tokenizer.IsSpecial(id),
                   absl::StrCat(Escaped(text), " id ", id, " at ", i));
  }
  FOX_FUZZ_CHECK(add_bos || !text.empty() || ids->empty(), Escaped(text));
  const absl::StatusOr<std::string> decoded = tokenizer.Decode(*ids);
  FOX_FUZZ_CHECK(decoded.ok(), absl::StrCat(Escaped(text), " -> ", decoded.status().ToString()));
  FOX_FUZZ_CHECK(*decoded == text,
                 absl::StrCat("escaped=", tokenizer.json_escaped(), " ", Escaped(text),
                              " came back ", Escaped(*decoded)));
}

void CheckDecode(const Tokenizer& tokenizer, std::string_view bytes) {
  std::vector<int32_t> ids;
  bool all_known = true;
  for (size_t i = 0; i + 1 < bytes.size(); i += 2) {
    const int32_t id = TokenId(tokenizer, static_cast<uint8_t>(bytes[i]) |
                                              static_cast<uint8_t>(bytes[i + 1]) << 8);
    all_known = all_known && tokenizer.IsKnown(id);
    ids.push_back(id);
  }
  const absl::StatusOr<std::string> decoded = tokenizer.Decode(ids);
  FOX_FUZZ_CHECK(decoded.ok() == all_known, Escaped(bytes));
  if (decoded.ok()) {
    FOX_FUZZ_CHECK(FindInvalidUtf8(*decoded) == std::string_view::npos,
                   absl::StrCat(Escaped(bytes), " decoded ", Escaped(*decoded)));
  }
}

}  // namespace
}  // namespace fox::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool json_escaped = (data[0] & 1) != 0;
  const bool add_bos = (data[0] & 2) != 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const fox::Tokenizer& tokenizer = fox::fuzz::Gpt2Tokenizer(json_escaped);
  fox::fuzz::CheckRoundTrip(tokenizer, text, add_bos);
  fox::fuzz::CheckDecode(tokenizer, text);
  return 0;
}
