// A request's sampling and stopping parameters, with the meanings (and the
// names, in error messages) of the OpenAI / vLLM completion APIs. A plain
// record: the sampler and the stop checker read it, nothing changes it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace fox {

struct SamplingParams {
  // Sampling. Each "off" value leaves the distribution as it is.
  float temperature = 1.0f;         // 0: greedy (argmax, lowest id on ties)
  int32_t top_k = -1;               // -1 or 0: off
  float top_p = 1.0f;               // 1: off
  float min_p = 0.0f;               // 0: off
  float repetition_penalty = 1.0f;  // 1: off; prompt and output tokens
  float presence_penalty = 0.0f;    // 0: off; output tokens only
  float frequency_penalty = 0.0f;   // 0: off; output tokens only
  std::optional<uint64_t> seed;     // unset: seeded from the OS
  // OpenAI's logit_bias: added to the token's logit before anything else
  // (each bias in [-100, 100]; -100 bans the token, +100 all but forces it).
  std::vector<std::pair<int32_t, float>> logit_bias;

  // Stopping.
  std::vector<int32_t> stop_token_ids;
  std::vector<std::string> stop;  // stop strings, matched on the detokenized text
  int64_t max_tokens = 16;
  int64_t min_tokens = 0;  // EOS and stop_token_ids cannot end the output before this
  bool ignore_eos = false;
  bool include_stop_str_in_output = false;

  // Output: how many most likely alternatives to return with each token
  // (0..20); unset: no logprobs at all.
  std::optional<int32_t> logprobs;
};

// The most alternatives `logprobs` may ask for (OpenAI's and vLLM's default cap).
inline constexpr int32_t kMaxLogprobs = 20;
// Bounds on what one request may carry, so that its stop checks and logit
// changes cost a bounded amount per step whatever a client sends.
inline constexpr size_t kMaxStopStrings = 64;
inline constexpr size_t kMaxStopStringBytes = 1024;
inline constexpr size_t kMaxStopTokenIds = 1024;
inline constexpr size_t kMaxLogitBiasEntries = 1024;

// OK, or InvalidArgument naming the offending parameter as the API spells it,
// e.g. "top_p must be in (0, 1], got 1.5". NaN is refused everywhere.
absl::Status ValidateSamplingParams(const SamplingParams& params, int vocab_size);

}  // namespace fox
