// Token sampling from one row of logits, with vLLM's processing order:
//   logit_bias -> penalties -> min_tokens suppression -> greedy argmax, or
//   temperature -> top-k -> top-p -> min-p -> one uniform draw.
// Each request brings its own generator and draws exactly once per sampled
// token, so a seeded request's tokens never depend on what runs beside it.
// Logprobs describe the raw model distribution (log_softmax of the logits as
// the model produced them, before any processing), which is what vLLM v1
// returns by default: they say what the model believed, whatever the filters.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/types/span.h"
#include "engine/sampling_params.h"

namespace fox {

// What the penalties need of a request's tokens, kept incrementally (sparse:
// only ids that occurred), so a step costs O(distinct tokens), not O(length).
class TokenHistory {
 public:
  struct Counts {
    bool in_prompt = false;
    int32_t in_output = 0;
  };

  explicit TokenHistory(absl::Span<const int32_t> prompt_ids = {});
  void AddOutput(int32_t token_id);

  int64_t num_output_tokens() const { return num_output_tokens_; }
  const std::unordered_map<int32_t, Counts>& counts() const { return counts_; }

 private:
  std::unordered_map<int32_t, Counts> counts_;
  int64_t num_output_tokens_ = 0;
};

struct TopLogprob {
  int32_t token_id;
  float logprob;
};

struct SampledToken {
  int32_t token_id = 0;
  float logprob = 0.0f;  // of token_id under the raw model distribution
  // The `params.logprobs` most likely tokens of the raw distribution, most
  // likely first (lowest id first on ties); empty when logprobs is unset.
  std::vector<TopLogprob> top_logprobs;
};

// The request's random generator: seeded from `seed`, or from the OS.
std::mt19937_64 MakeRequestRng(const std::optional<uint64_t>& seed);

// Repetition (HF/vLLM: divide positive logits, multiply negative ones, for
// ids in prompt or output), then frequency and presence (OpenAI: subtract
// frequency * count + presence, for ids in the output). In place.
void ApplyPenalties(absl::Span<float> logits, const SamplingParams& params,
                    const TokenHistory& history);

// Holds scratch buffers reused across calls (no per-token allocation of
// vocabulary-sized arrays). Not thread-safe: one per engine thread.
class Sampler {
 public:
  // Samples the next token of a request whose tokens so far are `history`.
  // `eos_token_id` < 0 means none. `logits` is [vocab_size].
  SampledToken Sample(absl::Span<const float> logits, const SamplingParams& params,
                      const TokenHistory& history, int32_t eos_token_id, std::mt19937_64& rng);

  // The distribution Sample draws from: (token id, probability) for every
  // token left with non-zero probability, by ascending id. For tests and
  // debugging; greedy gives the argmax with probability 1.
  std::vector<std::pair<int32_t, double>> Distribution(absl::Span<const float> logits,
                                                       const SamplingParams& params,
                                                       const TokenHistory& history,
                                                       int32_t eos_token_id);

 private:
  // Fills processed_ (penalties, suppression); true when greedy applies.
  bool Process(absl::Span<const float> logits, const SamplingParams& params,
               const TokenHistory& history, int32_t eos_token_id);
  // From processed_: candidates_ and weights_[id] (unnormalised), after
  // temperature and the filters. Returns the total weight.
  double BuildCandidates(const SamplingParams& params);

  std::vector<float> processed_;     // [vocab] logits after penalties
  std::vector<float> weights_;       // [vocab] exp((logit - max) / T), by id
  std::vector<int32_t> candidates_;  // ids that may be drawn
};

// Convenience for callers without a token history (offline generation): the
// same sampler with no penalties' history and no EOS suppression.
int32_t SampleToken(const float* logits, int32_t vocab_size, const SamplingParams& params,
                    std::mt19937_64& rng);

// log softmax(logits)[token] of the model's raw distribution.
float TokenLogprob(const float* logits, int32_t vocab_size, int32_t token);

}  // namespace fox
