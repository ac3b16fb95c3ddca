// Per-request stop conditions, with vLLM's meanings: EOS (unless ignore_eos)
// and stop_token_ids end the output with "stop", but only after min_tokens;
// so do stop strings, matched on the detokenized text across token
// boundaries; max_tokens ends it with "length". It also decides what text is
// emitted: text that may still turn out to begin a stop string is held back,
// so a streaming client never sees part of one, and the pieces returned
// concatenate to the request's final text.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/sampling_params.h"

namespace fox {

// Why an output ended. kStop and kLength are the OpenAI finish reasons; the
// engine adds kAbort (the client cancelled, or shutdown) and kError (the
// request could not be served, e.g. it alone outgrows the KV pool).
enum class FinishReason { kNone, kStop, kLength, kAbort, kError };

// "stop", "length", "abort", "error", or "" for kNone.
std::string_view FinishReasonName(FinishReason reason);

struct StopCheck {
  std::string text;  // to emit now; possibly empty
  FinishReason finish_reason = FinishReason::kNone;
  // vLLM's stop_reason: what ended the output, when it was a stop token id
  // or a stop string (unset for EOS and for length).
  std::optional<int32_t> stop_token_id;
  std::optional<std::string> stop_string;
};

// One per request; not thread-safe.
class StopChecker {
 public:
  // Copies what it needs from `params`; `eos_token_id` < 0 means none.
  StopChecker(const SamplingParams& params, int32_t eos_token_id);

  // Feeds one generated token and its text piece (IncrementalDetokenizer::
  // Push). The piece of a stop token (EOS or stop_token_ids) is dropped
  // unless include_stop_str_in_output, as vLLM drops it. Must not be called
  // once finished.
  StopCheck Append(int32_t token_id, std::string_view text);

  // For an output that ends some other way (abort): the held-back text.
  std::string Flush();

  bool finished() const { return finished_; }
  int64_t num_output_tokens() const { return num_output_tokens_; }

 private:
  // Finds the earliest stop string overlapping text from `new_text_start` on.
  // Returns its position in pending_ and sets *which.
  size_t FindStopString(size_t new_text_start, size_t* which) const;
  // Length of the longest suffix of pending_ that is a proper prefix of a stop string.
  size_t HeldBackLength() const;

  std::vector<int32_t> stop_token_ids_;
  std::vector<std::string> stop_strings_;
  int64_t max_tokens_;
  int64_t min_tokens_;
  int32_t eos_token_id_;
  bool include_stop_str_;

  std::string pending_;  // decoded text not emitted yet
  int64_t num_output_tokens_ = 0;
  bool finished_ = false;
};

}  // namespace fox
