// Token sampling from one row of logits. Greedy at temperature 0; otherwise
// softmax(logits / temperature) drawn with the request's own generator, so a
// seeded request samples the same tokens whatever else runs beside it.
#pragma once

#include <cstdint>
#include <optional>
#include <random>

namespace fox {

struct SamplingParams {
  float temperature = 1.0f;  // 0: greedy (argmax, lowest id on ties)
  std::optional<uint64_t> seed;
};

// The request's random generator: seeded from `seed`, or from the OS.
std::mt19937_64 MakeRequestRng(const std::optional<uint64_t>& seed);

int32_t SampleToken(const float* logits, int32_t vocab_size, const SamplingParams& params,
                    std::mt19937_64& rng);

// log softmax(logits)[token] of the model's raw distribution.
float TokenLogprob(const float* logits, int32_t vocab_size, int32_t token);

}  // namespace fox
