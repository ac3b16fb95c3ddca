#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "engine/vocab_math.h"

namespace fox {
namespace {

// vLLM treats temperatures below this as greedy: dividing by them overflows.
constexpr float kGreedyTemperature = 1e-5f;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// log sum exp, the sum accumulated in double so a 50k-entry sum keeps float precision.
double LogSumExp(absl::Span<const float> logits) {
  const float max_logit = MaxOf(logits);
  if (!std::isfinite(max_logit)) return max_logit;
  return max_logit + std::log(SumExpShifted(logits, max_logit));
}

// The n largest logits, most likely first, lowest id first on ties. An
// insertion list beats a heap for n <= 20: most ids fail the first compare.
std::vector<TopLogprob> TopLogprobs(absl::Span<const float> logits, int32_t n, double log_z) {
  std::vector<TopLogprob> top;
  if (n <= 0) return top;
  top.reserve(n + 1);
  for (int32_t id = 0; id < static_cast<int32_t>(logits.size()); ++id) {
    const float x = logits[id];
    if (static_cast<int32_t>(top.size()) == n && !(x > top.back().logprob)) continue;
    auto at =
        std::find_if(top.begin(), top.end(), [x](const TopLogprob& t) { return x > t.logprob; });
    top.insert(at, {id, x});
    if (static_cast<int32_t>(top.size()) > n) top.pop_back();
  }
  for (TopLogprob& t : top) t.logprob = static_cast<float>(t.logprob - log_z);
  return top;
}

// One 53-bit uniform in [0, 1) from exactly one generator call, spelled out
// so the stream does not depend on a standard library's distribution code.
double UniformDraw(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

}  // namespace

TokenHistory::TokenHistory(absl::Span<const int32_t> prompt_ids) {
  for (const int32_t id : prompt_ids) counts_[id].in_prompt = true;
}

void TokenHistory::AddOutput(int32_t token_id) {
  ++counts_[token_id].in_output;
  ++num_output_tokens_;
}

std::mt19937_64 MakeRequestRng(const std::optional<uint64_t>& seed) {
  if (seed.has_value()) return std::mt19937_64(*seed);
  std::random_device device;
  return std::mt19937_64((uint64_t{device()} << 32) ^ device());
}

void ApplyPenalties(absl::Span<float> logits, const SamplingParams& params,
                    const TokenHistory& history) {
  const float repetition = params.repetition_penalty;
  const float frequency = params.frequency_penalty;
  const float presence = params.presence_penalty;
  if (repetition == 1.0f && frequency == 0.0f && presence == 0.0f) return;
  const int32_t vocab_size = static_cast<int32_t>(logits.size());
  for (const auto& [id, counts] : history.counts()) {
    if (id < 0 || id >= vocab_size) continue;
    float& logit = logits[id];
    if (repetition != 1.0f) logit = logit > 0.0f ? logit / repetition : logit * repetition;
    if (counts.in_output > 0) logit -= frequency * static_cast<float>(counts.in_output) + presence;
  }
}

bool Sampler::Process(absl::Span<const float> logits, const SamplingParams& params,
                      const TokenHistory& history, int32_t eos_token_id) {
  processed_.assign(logits.begin(), logits.end());
  for (const auto& [id, bias] : params.logit_bias) processed_[id] += bias;  // ids validated
  ApplyPenalties(absl::MakeSpan(processed_), params, history);
  // Before min_tokens, the tokens that would end the output cannot be drawn.
  if (history.num_output_tokens() < params.min_tokens) {
    const int32_t vocab_size = static_cast<int32_t>(processed_.size());
    for (const int32_t id : params.stop_token_ids) {
      if (id >= 0 && id < vocab_size) processed_[id] = kNegInf;
    }
    if (!params.ignore_eos && eos_token_id >= 0 && eos_token_id < vocab_size) {
      processed_[eos_token_id] = kNegInf;
    }
  }
  return params.temperature < kGreedyTemperature;
}

double Sampler::BuildCandidates(const SamplingParams& params) {
  const int32_t vocab_size = static_cast<int32_t>(processed_.size());
  const float max_logit = MaxOf(processed_);
  weights_.resize(vocab_size);
  if (!std::isfinite(max_logit)) {
    // Everything suppressed (or broken logits): no distribution to draw from.
    candidates_.assign(1, Argmax(processed_));
    weights_[candidates_[0]] = 1.0f;
    return 1.0;
  }
  const float inv_t = 1.0f / params.temperature;
  const auto weigh = [&](int32_t id) {
    weights_[id] = std::exp((processed_[id] - max_logit) * inv_t);
  };
  candidates_.resize(vocab_size);
  std::iota(candidates_.begin(), candidates_.end(), 0);

  const int32_t top_k = params.top_k <= 0 ? vocab_size : std::min(params.top_k, vocab_size);
  // Only ids that can survive top-k are weighed: vocab_size exps are much of
  // the cost of sampling one token.
  if (top_k == vocab_size) ExpShifted(processed_, max_logit, inv_t, weights_.data());
  if (top_k == vocab_size && params.top_p >= 1.0f) {
    // No ordering needed: min-p is a threshold relative to the largest
    // weight, which is exp(0) = 1.
    double total = 0.0;
    for (float& w : weights_) {
      if (w < params.min_p) w = 0.0f;
      total += w;
    }
    return total;
  }

  // Most likely first; ties go to the lower id so the kept set is deterministic.
  const auto more_likely = [this](int32_t a, int32_t b) {
    return processed_[a] > processed_[b] || (processed_[a] == processed_[b] && a < b);
  };
  auto begin = candidates_.begin();
  int32_t num_sorted = 0;
  double total = 0.0;
  if (top_k < vocab_size) {
    std::nth_element(begin, begin + top_k, candidates_.end(), more_likely);
    std::sort(begin, begin + top_k, more_likely);
    candidates_.resize(top_k);
    num_sorted = top_k;
    for (const int32_t id : candidates_) weigh(id);
    for (const int32_t id : candidates_) total += weights_[id];
  } else {
    for (const float w : weights_) total += w;
  }

  int32_t num_kept = static_cast<int32_t>(candidates_.size());
  if (params.top_p < 1.0f) {
    // Smallest most-likely prefix with mass >= top_p. Without top-k, sort
    // only as far as needed: growing chunks split off by nth_element.
    const double target = params.top_p * total;
    double mass = 0.0;
    int32_t chunk = 64;
    for (int32_t i = 0; i < num_kept; ++i) {
      if (i == num_sorted) {
        const int32_t end = std::min(num_kept, num_sorted + chunk);
        std::nth_element(begin + num_sorted, begin + end, candidates_.end(), more_likely);
        std::sort(begin + num_sorted, begin + end, more_likely);
        num_sorted = end;
        chunk *= 4;
      }
      mass += weights_[candidates_[i]];
      if (mass >= target) {
        num_kept = i + 1;
        break;
      }
    }
  }
  // min-p: the kept prefix is sorted and its head is the max (weight 1).
  int32_t num_min_p = 0;
  while (num_min_p < num_kept && weights_[candidates_[num_min_p]] >= params.min_p) ++num_min_p;
  num_kept = std::max(num_min_p, 1);
  candidates_.resize(num_kept);
  total = 0.0;
  for (const int32_t id : candidates_) total += weights_[id];
  return total;
}

SampledToken Sampler::Sample(absl::Span<const float> logits, const SamplingParams& params,
                             const TokenHistory& history, int32_t eos_token_id,
                             std::mt19937_64& rng) {
  SampledToken out;
  if (Process(logits, params, history, eos_token_id)) {
    out.token_id = Argmax(processed_);
  } else {
    const double total = BuildCandidates(params);
    const double target = UniformDraw(rng) * total;
    double mass = 0.0;
    out.token_id = -1;
    for (const int32_t id : candidates_) {
      const float w = weights_[id];
      if (w <= 0.0f) continue;
      mass += w;
      out.token_id = id;  // rounding may leave target just past the sum: last non-zero wins
      if (mass > target) break;
    }
    // Every weight zero or NaN (all logits -inf or NaN): nothing to draw from.
    if (out.token_id < 0) out.token_id = Argmax(processed_);
  }
  const double log_z = LogSumExp(logits);
  out.logprob = static_cast<float>(logits[out.token_id] - log_z);
  if (params.logprobs.has_value()) out.top_logprobs = TopLogprobs(logits, *params.logprobs, log_z);
  return out;
}

std::vector<std::pair<int32_t, double>> Sampler::Distribution(absl::Span<const float> logits,
                                                              const SamplingParams& params,
                                                              const TokenHistory& history,
                                                              int32_t eos_token_id) {
  if (Process(logits, params, history, eos_token_id)) return {{Argmax(processed_), 1.0}};
  const double total = BuildCandidates(params);
  std::vector<std::pair<int32_t, double>> probabilities;
  for (const int32_t id : candidates_) {
    if (weights_[id] > 0.0f) probabilities.emplace_back(id, weights_[id] / total);
  }
  std::sort(probabilities.begin(), probabilities.end());
  return probabilities;
}

int32_t SampleToken(const float* logits, int32_t vocab_size, const SamplingParams& params,
                    std::mt19937_64& rng) {
  thread_local Sampler sampler;
  return sampler.Sample({logits, static_cast<size_t>(vocab_size)}, params, TokenHistory(), -1, rng)
      .token_id;
}

float TokenLogprob(const float* logits, int32_t vocab_size, int32_t token) {
  return static_cast<float>(logits[token] - LogSumExp({logits, static_cast<size_t>(vocab_size)}));
}

}  // namespace fox
