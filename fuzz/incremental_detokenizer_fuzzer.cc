// Streaming detokenization (models/incremental_detokenizer.h), GPT-2 in both
// modes. The first input byte picks the mode and where the ids come from:
// the rest of the input read as 16-bit ids (TokenId), or the rest as text
// (made valid UTF-8) encoded by plain GPT-2, so that in the escaped mode the
// stream spells arbitrary escapes (valid, invalid, split across tokens).
// Properties:
//  - every piece Push returns is valid UTF-8;
//  - the pieces, then Flush, concatenate to Decode of the ids in the
//    vocabulary (Push skips the others; Decode would refuse them);
//  - after Flush the same object streams a second sequence the same way.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "fuzz/fuzz_support.h"
#include "models/incremental_detokenizer.h"
#include "models/utf8.h"

namespace fox::fuzz {
namespace {

std::string Stream(IncrementalDetokenizer& detokenizer, const std::vector<int32_t>& ids) {
  std::string streamed;
  for (const int32_t id : ids) {
    const std::string piece = detokenizer.Push(id);
    FOX_FUZZ_CHECK(FindInvalidUtf8(piece) == std::string_view::npos,
                   absl::StrCat("piece ", Escaped(piece), " of ids ", absl::StrJoin(ids, ",")));
    streamed += piece;
  }
  const std::string rest = detokenizer.Flush();
  FOX_FUZZ_CHECK(FindInvalidUtf8(rest) == std::string_view::npos, Escaped(rest));
  return streamed + rest;
}

std::vector<int32_t> IdsOf(const Tokenizer& tokenizer, bool from_text, std::string_view bytes) {
  if (from_text) {
    std::string text;
    AppendUtf8Lossy(bytes, /*final=*/true, &text);
    absl::StatusOr<std::vector<int32_t>> ids =
        Gpt2Tokenizer(/*json_escaped=*/false).Encode(text, /*add_bos=*/false);
    FOX_FUZZ_CHECK(ids.ok(), ids.status().ToString());
    return *std::move(ids);
  }
  std::vector<int32_t> ids;
  for (size_t i = 0; i + 1 < bytes.size(); i += 2) {
    ids.push_back(TokenId(tokenizer, static_cast<uint8_t>(bytes[i]) |
                                         static_cast<uint8_t>(bytes[i + 1]) << 8));
  }
  return ids;
}

}  // namespace
}  // namespace fox::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using fox::fuzz::Escaped;
  if (size == 0) return 0;
  const bool json_escaped = (data[0] & 1) != 0;
  const bool from_text = (data[0] & 2) != 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const fox::Tokenizer& tokenizer = fox::fuzz::Gpt2Tokenizer(json_escaped);
  const std::vector<int32_t> ids = fox::fuzz::IdsOf(tokenizer, from_text, rest);

  std::vector<int32_t> known;
  for (const int32_t id : ids) {
    if (tokenizer.IsKnown(id)) known.push_back(id);
  }
  const absl::StatusOr<std::string> decoded = tokenizer.Decode(known);
  FOX_FUZZ_CHECK(decoded.ok(), decoded.status().ToString());

  fox::IncrementalDetokenizer detokenizer(tokenizer);
  const std::string streamed = fox::fuzz::Stream(detokenizer, ids);
  FOX_FUZZ_CHECK(streamed == *decoded,
                 absl::StrCat("escaped=", json_escaped, " ids ", absl::StrJoin(ids, ","),
                              ": streamed ", Escaped(streamed), ", decoded ", Escaped(*decoded)));
  const std::string again = fox::fuzz::Stream(detokenizer, ids);
  FOX_FUZZ_CHECK(again == streamed,
                 absl::StrCat("second stream ", Escaped(again), ", first ", Escaped(streamed)));
  return 0;
}
