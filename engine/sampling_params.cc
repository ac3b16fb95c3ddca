#include "engine/sampling_params.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace fox {
namespace {

// Comparisons are written so that NaN fails them (`!(x >= 0)` rather than `x < 0`).
template <typename T>
absl::Status Refuse(absl::string_view name, absl::string_view rule, T value) {
  return absl::InvalidArgumentError(absl::StrCat(name, " must ", rule, ", got ", value));
}

}  // namespace

absl::Status ValidateSamplingParams(const SamplingParams& params, int vocab_size) {
  if (!(params.temperature >= 0.0f) || std::isinf(params.temperature)) {
    return Refuse("temperature", "be a finite number >= 0", params.temperature);
  }
  if (params.top_k < -1) {
    return Refuse("top_k", "be -1 or 0 (off) or at least 1", params.top_k);
  }
  if (!(params.top_p > 0.0f && params.top_p <= 1.0f)) {
    return Refuse("top_p", "be in (0, 1]", params.top_p);
  }
  if (!(params.min_p >= 0.0f && params.min_p <= 1.0f)) {
    return Refuse("min_p", "be in [0, 1]", params.min_p);
  }
  if (!(params.repetition_penalty > 0.0f) || std::isinf(params.repetition_penalty)) {
    return Refuse("repetition_penalty", "be a finite number > 0", params.repetition_penalty);
  }
  if (!(params.presence_penalty >= -2.0f && params.presence_penalty <= 2.0f)) {
    return Refuse("presence_penalty", "be in [-2, 2]", params.presence_penalty);
  }
  if (!(params.frequency_penalty >= -2.0f && params.frequency_penalty <= 2.0f)) {
    return Refuse("frequency_penalty", "be in [-2, 2]", params.frequency_penalty);
  }
  if (params.max_tokens < 1) {
    return Refuse("max_tokens", "be at least 1", params.max_tokens);
  }
  if (params.min_tokens < 0) {
    return Refuse("min_tokens", "be at least 0", params.min_tokens);
  }
  if (params.min_tokens > params.max_tokens) {
    return absl::InvalidArgumentError(absl::StrCat("min_tokens must be at most max_tokens (",
                                                   params.max_tokens, "), got ",
                                                   params.min_tokens));
  }
  if (params.stop_token_ids.size() > kMaxStopTokenIds) {
    return absl::InvalidArgumentError(absl::StrCat("stop_token_ids may hold at most ",
                                                   kMaxStopTokenIds, " ids, got ",
                                                   params.stop_token_ids.size()));
  }
  if (params.stop.size() > kMaxStopStrings) {
    return absl::InvalidArgumentError(absl::StrCat("stop may hold at most ", kMaxStopStrings,
                                                   " strings, got ", params.stop.size()));
  }
  if (params.logit_bias.size() > kMaxLogitBiasEntries) {
    return absl::InvalidArgumentError(absl::StrCat("logit_bias may hold at most ",
                                                   kMaxLogitBiasEntries, " entries, got ",
                                                   params.logit_bias.size()));
  }
  for (const int32_t id : params.stop_token_ids) {
    if (id < 0 || id >= vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("stop_token_ids must be in [0, ", vocab_size, "), got ", id));
    }
  }
  for (const std::string& s : params.stop) {
    if (s.empty()) return absl::InvalidArgumentError("stop must not contain an empty string");
    if (s.size() > kMaxStopStringBytes) {
      return absl::InvalidArgumentError(absl::StrCat("stop strings may be at most ",
                                                     kMaxStopStringBytes, " bytes long, got one of ",
                                                     s.size()));
    }
  }
  for (const auto& [id, bias] : params.logit_bias) {
    if (id < 0 || id >= vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("logit_bias keys must be token ids in [0, ", vocab_size, "), got ", id));
    }
    if (!(bias >= -100.0f && bias <= 100.0f)) {
      return absl::InvalidArgumentError(
          absl::StrCat("logit_bias values must be in [-100, 100], got ", bias, " for token ", id));
    }
  }
  if (params.logprobs.has_value() && (*params.logprobs < 0 || *params.logprobs > kMaxLogprobs)) {
    return Refuse("logprobs", absl::StrCat("be in [0, ", kMaxLogprobs, "]"), *params.logprobs);
  }
  return absl::OkStatus();
}

}  // namespace fox
