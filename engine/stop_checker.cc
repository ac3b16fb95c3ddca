#include "engine/stop_checker.h"

#include <algorithm>
#include <cassert>
#include <utility>

namespace fox {

std::string_view FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kAbort:
      return "abort";
    case FinishReason::kError:
      return "error";
    case FinishReason::kNone:
      break;
  }
  return "";
}

StopChecker::StopChecker(const SamplingParams& params, int32_t eos_token_id)
    : stop_token_ids_(params.stop_token_ids),
      stop_strings_(params.stop),
      max_tokens_(params.max_tokens),
      min_tokens_(params.min_tokens),
      eos_token_id_(params.ignore_eos ? -1 : eos_token_id),
      include_stop_str_(params.include_stop_str_in_output) {}

StopCheck StopChecker::Append(int32_t token_id, std::string_view text) {
  assert(!finished_);
  StopCheck check;
  ++num_output_tokens_;
  // Like vLLM, nothing but length ends the first min_tokens tokens.
  const bool may_stop = num_output_tokens_ > min_tokens_;
  const bool is_stop_token =
      token_id == eos_token_id_ ||
      std::find(stop_token_ids_.begin(), stop_token_ids_.end(), token_id) != stop_token_ids_.end();

  // A stop token ends the output before its own text; held-back text was
  // not a stop string after all and goes out with the last piece.
  if (may_stop && is_stop_token) {
    if (include_stop_str_) pending_.append(text);
    check.text = std::exchange(pending_, {});
    check.finish_reason = FinishReason::kStop;
    if (token_id != eos_token_id_) check.stop_token_id = token_id;
    finished_ = true;
    return check;
  }

  const size_t new_text_start = pending_.size();
  pending_.append(text);
  if (may_stop && !stop_strings_.empty()) {
    size_t which = 0;
    const size_t at = FindStopString(new_text_start, &which);
    if (at != std::string::npos) {
      const std::string& stop = stop_strings_[which];
      pending_.resize(include_stop_str_ ? at + stop.size() : at);
      check.text = std::exchange(pending_, {});
      check.finish_reason = FinishReason::kStop;
      check.stop_string = stop;
      finished_ = true;
      return check;
    }
  }

  if (num_output_tokens_ >= max_tokens_) {
    check.text = std::exchange(pending_, {});
    check.finish_reason = FinishReason::kLength;
    finished_ = true;
    return check;
  }

  // Held back even with include_stop_str_in_output: matching needs the text
  // before the new piece, and text after a stop string must not go out.
  const size_t held = HeldBackLength();
  check.text = pending_.substr(0, pending_.size() - held);
  pending_.erase(0, pending_.size() - held);
  return check;
}

std::string StopChecker::Flush() { return std::exchange(pending_, {}); }

size_t StopChecker::FindStopString(size_t new_text_start, size_t* which) const {
  // Only matches that end in the new text count: earlier ones would have
  // stopped earlier, unless min_tokens forbade it then.
  size_t best = std::string::npos;
  for (size_t i = 0; i < stop_strings_.size(); ++i) {
    const std::string& stop = stop_strings_[i];
    const size_t from = new_text_start >= stop.size() ? new_text_start - stop.size() + 1 : 0;
    const size_t at = pending_.find(stop, from);
    if (at == std::string::npos) continue;
    // Earliest start wins; at the same start, the shorter string ended first.
    if (best == std::string::npos || at < best ||
        (at == best && stop.size() < stop_strings_[*which].size())) {
      best = at;
      *which = i;
    }
  }
  return best;
}

size_t StopChecker::HeldBackLength() const {
  const std::string_view pending(pending_);
  size_t held = 0;
  for (const std::string& stop : stop_strings_) {
    const size_t longest = std::min(stop.size() - 1, pending.size());
    for (size_t n = longest; n > held; --n) {
      if (pending.substr(pending.size() - n) == std::string_view(stop).substr(0, n)) {
        held = n;
        break;
      }
    }
  }
  return held;
}

}  // namespace fox
