#include "models/incremental_detokenizer.h"

#include "models/json_escape.h"
#include "models/tokenizer.h"
#include "models/utf8.h"

namespace fox {

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tokenizer)
    : tokenizer_(tokenizer) {}

std::string IncrementalDetokenizer::Push(int32_t token_id) {
  if (!tokenizer_.IsKnown(token_id) || tokenizer_.IsSpecial(token_id)) return {};
  pending_bytes_ += tokenizer_.TokenBytes(token_id);
  return Drain(/*final=*/false);
}

std::string IncrementalDetokenizer::Flush() { return Drain(/*final=*/true); }

// Both stages hold back only a tail whose meaning depends on what comes next,
// and decide everything before it exactly as a one-shot decode would (see
// AppendUtf8Lossy and AppendJsonUnescaped), so the pieces add up to Decode.
std::string IncrementalDetokenizer::Drain(bool final) {
  std::string text;
  const size_t consumed = AppendUtf8Lossy(pending_bytes_, final, &text);
  pending_bytes_.erase(0, consumed);
  if (!tokenizer_.json_escaped()) return text;

  pending_escaped_ += text;
  std::string unescaped;
  const size_t unescaped_up_to = AppendJsonUnescaped(pending_escaped_, final, &unescaped);
  pending_escaped_.erase(0, unescaped_up_to);
  return unescaped;
}

}  // namespace fox
