#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace fox {
namespace {

int32_t Argmax(const float* logits, int32_t n) {
  int32_t best = 0;
  for (int32_t i = 1; i < n; ++i) {
    if (logits[i] > logits[best]) best = i;
  }
  return best;
}

}  // namespace

std::mt19937_64 MakeRequestRng(const std::optional<uint64_t>& seed) {
  if (seed.has_value()) return std::mt19937_64(*seed);
  std::random_device device;
  return std::mt19937_64((uint64_t{device()} << 32) ^ device());
}

int32_t SampleToken(const float* logits, int32_t vocab_size, const SamplingParams& params,
                    std::mt19937_64& rng) {
  if (params.temperature <= 0.0f) return Argmax(logits, vocab_size);
  const float max_logit = logits[Argmax(logits, vocab_size)];
  const double inv_t = 1.0 / params.temperature;
  std::vector<double> cumulative(vocab_size);
  double total = 0.0;
  for (int32_t i = 0; i < vocab_size; ++i) {
    total += std::exp((logits[i] - max_logit) * inv_t);
    cumulative[i] = total;
  }
  // One uniform draw per token keeps seeded streams reproducible.
  const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng) * total;
  const auto it = std::upper_bound(cumulative.begin(), cumulative.end(), u);
  return static_cast<int32_t>(std::min<ptrdiff_t>(it - cumulative.begin(), vocab_size - 1));
}

float TokenLogprob(const float* logits, int32_t vocab_size, int32_t token) {
  float max_logit = logits[0];
  for (int32_t i = 1; i < vocab_size; ++i) max_logit = std::max(max_logit, logits[i]);
  double sum = 0.0;
  for (int32_t i = 0; i < vocab_size; ++i) sum += std::exp(static_cast<double>(logits[i] - max_logit));
  return static_cast<float>(logits[token] - max_logit - std::log(sum));
}

}  // namespace fox
