#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace fox {
namespace {

using Probabilities = std::vector<std::pair<int32_t, double>>;

std::vector<float> LogitsOf(const std::vector<double>& probabilities) {
  std::vector<float> logits;
  for (const double p : probabilities) logits.push_back(static_cast<float>(std::log(p)));
  return logits;
}

std::vector<float> RandomLogits(int n, uint64_t seed, float scale = 3.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> logits(n);
  for (float& x : logits) x = normal(rng);
  return logits;
}

// softmax(logits / t) in double.
std::vector<double> Softmax(const std::vector<float>& logits, double t = 1.0) {
  const double max_logit = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(logits.size());
  double sum = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) sum += p[i] = std::exp((logits[i] - max_logit) / t);
  for (double& x : p) x /= sum;
  return p;
}

void ExpectDistribution(const Probabilities& actual, const Probabilities& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    EXPECT_EQ(actual[i].first, expected[i].first) << "entry " << i;
    EXPECT_NEAR(actual[i].second, expected[i].second, 1e-6) << "token " << expected[i].first;
  }
}

Probabilities DistributionOf(const std::vector<float>& logits, const SamplingParams& params,
                             const TokenHistory& history = TokenHistory(), int32_t eos = -1) {
  Sampler sampler;
  return sampler.Distribution(logits, params, history, eos);
}

TEST(SamplerTest, GreedyPicksArgmaxLowestIdOnTies) {
  const std::vector<float> logits = {1.0f, 3.0f, 0.5f, 3.0f, 2.0f};
  SamplingParams params;
  params.temperature = 0.0f;
  Sampler sampler;
  std::mt19937_64 rng(1);
  const std::mt19937_64 before = rng;
  EXPECT_EQ(sampler.Sample(logits, params, TokenHistory(), -1, rng).token_id, 1);
  EXPECT_EQ(rng, before) << "greedy must not consume random numbers";
  params.temperature = 1e-6f;  // below vLLM's epsilon: greedy too
  EXPECT_EQ(sampler.Sample(logits, params, TokenHistory(), -1, rng).token_id, 1);
}

TEST(SamplerTest, GreedySeesPenalties) {
  const std::vector<float> logits = {2.0f, 1.9f, 0.0f};
  SamplingParams params;
  params.temperature = 0.0f;
  params.presence_penalty = 0.5f;
  TokenHistory history;
  history.AddOutput(0);
  EXPECT_EQ(DistributionOf(logits, params, history), (Probabilities{{1, 1.0}}));
}

TEST(SamplerTest, LogitBiasShiftsTheDistributionButNotTheLogprobs) {
  const std::vector<float> logits = RandomLogits(8, 7);
  SamplingParams params;
  params.logit_bias = {{5, 2.5f}, {1, -20.0f}};
  std::vector<float> biased = logits;
  biased[5] += 2.5f;
  biased[1] -= 20.0f;
  const std::vector<double> p = Softmax(biased);
  Probabilities expected;
  for (int32_t id = 0; id < 8; ++id) expected.emplace_back(id, p[id]);
  ExpectDistribution(DistributionOf(logits, params), expected);

  params.temperature = 0.0f;
  params.logit_bias = {{3, 100.0f}};
  params.logprobs = 0;
  Sampler sampler;
  std::mt19937_64 rng(1);
  const SampledToken token = sampler.Sample(logits, params, TokenHistory(), -1, rng);
  EXPECT_EQ(token.token_id, 3);
  EXPECT_NEAR(token.logprob, std::log(Softmax(logits)[3]), 1e-5) << "logprobs stay raw";
}

TEST(SamplerTest, UnfilteredDistributionIsSoftmaxWithTemperature) {
  const std::vector<float> logits = RandomLogits(1000, 3);
  SamplingParams params;
  params.temperature = 0.7f;
  const std::vector<double> reference = Softmax(logits, 0.7);
  Probabilities expected;
  for (int32_t i = 0; i < 1000; ++i) expected.emplace_back(i, reference[i]);
  ExpectDistribution(DistributionOf(logits, params), expected);
}

TEST(SamplerTest, TopKKeepsExactlyKMostLikely) {
  const std::vector<float> logits = {1.0f, 3.0f, 2.0f, 0.5f, 2.5f};
  SamplingParams params;
  params.top_k = 2;
  const double z = std::exp(3.0) + std::exp(2.5);
  ExpectDistribution(DistributionOf(logits, params),
                     {{1, std::exp(3.0) / z}, {4, std::exp(2.5) / z}});
  params.top_k = 0;  // off, like -1
  EXPECT_EQ(DistributionOf(logits, params).size(), 5u);
  params.top_k = 50;  // larger than the vocabulary: everything
  EXPECT_EQ(DistributionOf(logits, params).size(), 5u);
}

TEST(SamplerTest, TopKTiesKeepLowerIds) {
  const std::vector<float> logits = {1.0f, 2.0f, 2.0f, 2.0f};
  SamplingParams params;
  params.top_k = 2;
  ExpectDistribution(DistributionOf(logits, params), {{1, 0.5}, {2, 0.5}});
}

TEST(SamplerTest, TopPKeepsSmallestPrefixReachingP) {
  const std::vector<float> logits = LogitsOf({0.1, 0.4, 0.2, 0.3});
  SamplingParams params;
  params.top_p = 0.65f;  // 0.4 + 0.3 = 0.7 >= 0.65
  ExpectDistribution(DistributionOf(logits, params), {{1, 0.4 / 0.7}, {3, 0.3 / 0.7}});
  params.top_p = 0.75f;  // needs 0.2 as well
  ExpectDistribution(DistributionOf(logits, params),
                     {{1, 0.4 / 0.9}, {2, 0.2 / 0.9}, {3, 0.3 / 0.9}});
  params.top_p = 0.3f;  // the most likely alone
  ExpectDistribution(DistributionOf(logits, params), {{1, 1.0}});
}

TEST(SamplerTest, TopPAppliesToTheTopKRenormalisedMass) {
  const std::vector<float> logits = LogitsOf({0.1, 0.4, 0.2, 0.3});
  SamplingParams params;
  params.top_k = 3;      // 0.4, 0.3, 0.2 -> 4/9, 3/9, 2/9
  params.top_p = 0.75f;  // 7/9 >= 0.75 where 0.7 alone would not be
  ExpectDistribution(DistributionOf(logits, params), {{1, 4.0 / 7.0}, {3, 3.0 / 7.0}});
}

TEST(SamplerTest, TopPOnLargeVocabularyMatchesSortedReference) {
  const std::vector<float> logits = RandomLogits(50257, 11, 2.0f);
  const std::vector<double> p = Softmax(logits);
  std::vector<int32_t> order(p.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return p[a] > p[b]; });
  // top_p halfway through the n-th token's mass: a clear margin either side.
  for (const size_t n : {1, 7, 120, 1000}) {
    double mass = 0.0;
    for (size_t i = 0; i < n; ++i) mass += p[order[i]];
    const float top_p = static_cast<float>(mass - 0.5 * p[order[n - 1]]);
    ASSERT_GT(0.5 * p[order[n - 1]], 2e-6) << "margin too small for float weights";
    Probabilities expected;
    for (size_t i = 0; i < n; ++i) expected.emplace_back(order[i], p[order[i]] / mass);
    std::sort(expected.begin(), expected.end());
    SamplingParams params;
    params.top_p = top_p;
    SCOPED_TRACE(n);
    ExpectDistribution(DistributionOf(logits, params), expected);
  }
}

TEST(SamplerTest, MinPKeepsTokensAboveFractionOfMaxAfterTemperature) {
  const std::vector<float> logits = LogitsOf({0.5, 0.3, 0.15, 0.05});
  SamplingParams params;
  params.min_p = 0.2f;  // threshold 0.1
  ExpectDistribution(DistributionOf(logits, params),
                     {{0, 0.5 / 0.95}, {1, 0.3 / 0.95}, {2, 0.15 / 0.95}});
  params.min_p = 0.5f;  // threshold 0.25
  ExpectDistribution(DistributionOf(logits, params), {{0, 0.5 / 0.8}, {1, 0.3 / 0.8}});
  // At temperature 2 the weights are sqrt(p): 0.3 / 0.5 -> sqrt(0.6) = 0.775,
  // sqrt(0.3) = 0.548, sqrt(0.1) = 0.316; min_p 0.5 now keeps three.
  params.temperature = 2.0f;
  const double z = std::sqrt(0.5) + std::sqrt(0.3) + std::sqrt(0.15);
  ExpectDistribution(DistributionOf(logits, params),
                     {{0, std::sqrt(0.5) / z}, {1, std::sqrt(0.3) / z}, {2, std::sqrt(0.15) / z}});
  params.top_k = 2;  // min-p also works on the sorted path
  params.temperature = 1.0f;
  params.min_p = 0.7f;
  ExpectDistribution(DistributionOf(logits, params), {{0, 1.0}});
}

TEST(SamplerTest, PenaltiesMatchHandComputation) {
  std::vector<float> logits = {2.0f, -1.0f, 0.5f, 3.0f, -2.0f};
  const std::vector<int32_t> prompt = {0, 1, 0};
  TokenHistory history(prompt);
  for (const int32_t id : {2, 2, 3}) history.AddOutput(id);
  SamplingParams params;
  params.repetition_penalty = 2.0f;
  params.frequency_penalty = 0.5f;
  params.presence_penalty = 0.25f;
  ApplyPenalties(absl::MakeSpan(logits), params, history);
  EXPECT_FLOAT_EQ(logits[0], 1.0f);   // prompt only: 2 / 2
  EXPECT_FLOAT_EQ(logits[1], -2.0f);  // prompt only, negative: -1 * 2
  EXPECT_FLOAT_EQ(logits[2], -1.0f);  // 0.5 / 2 - 0.5 * 2 - 0.25
  EXPECT_FLOAT_EQ(logits[3], 0.75f);  // 3 / 2 - 0.5 * 1 - 0.25
  EXPECT_FLOAT_EQ(logits[4], -2.0f);  // never seen
  EXPECT_EQ(history.num_output_tokens(), 3);
}

TEST(SamplerTest, NegativePenaltiesEncourageRepeats) {
  std::vector<float> logits = {1.0f, 1.0f};
  TokenHistory history;
  history.AddOutput(1);
  history.AddOutput(1);
  SamplingParams params;
  params.frequency_penalty = -1.5f;
  params.presence_penalty = -0.5f;
  ApplyPenalties(absl::MakeSpan(logits), params, history);
  EXPECT_FLOAT_EQ(logits[0], 1.0f);
  EXPECT_FLOAT_EQ(logits[1], 1.0f + 3.0f + 0.5f);
}

TEST(SamplerTest, MinTokensSuppressesEosAndStopIds) {
  const std::vector<float> logits = {0.0f, 5.0f, 5.0f, 0.0f};
  SamplingParams params;
  params.min_tokens = 2;
  params.stop_token_ids = {2};
  TokenHistory history;
  history.AddOutput(3);  // one output token: the second may not stop yet
  const double z = 2.0;
  ExpectDistribution(DistributionOf(logits, params, history, /*eos=*/1), {{0, 1 / z}, {3, 1 / z}});
  params.ignore_eos = true;  // EOS is an ordinary token then
  EXPECT_EQ(DistributionOf(logits, params, history, 1).size(), 3u);
  params.ignore_eos = false;
  history.AddOutput(3);  // two outputs: the third may stop
  EXPECT_EQ(DistributionOf(logits, params, history, 1).size(), 4u);
}

TEST(SamplerTest, SeededStreamIgnoresOtherRequests) {
  const std::vector<float> logits = RandomLogits(500, 5, 1.0f);
  SamplingParams params;
  params.top_p = 0.9f;
  auto run = [&](bool interleave) {
    Sampler sampler;
    std::mt19937_64 mine = MakeRequestRng(1234);
    std::mt19937_64 other = MakeRequestRng(99);
    SamplingParams other_params;
    other_params.top_k = 7;
    std::vector<int32_t> tokens;
    for (int i = 0; i < 64; ++i) {
      if (interleave) {
        for (int j = 0; j < i % 3; ++j)
          sampler.Sample(logits, other_params, TokenHistory(), -1, other);
      }
      tokens.push_back(sampler.Sample(logits, params, TokenHistory(), -1, mine).token_id);
    }
    return tokens;
  };
  const std::vector<int32_t> alone = run(false);
  EXPECT_EQ(alone, run(true));
  EXPECT_GT(std::set<int32_t>(alone.begin(), alone.end()).size(), 5u) << "it does sample";
}

TEST(SamplerTest, EachSampledTokenDrawsExactlyOnce) {
  const std::vector<float> logits = RandomLogits(3000, 8);
  Sampler sampler;
  std::vector<SamplingParams> cases(4);
  cases[1].top_k = 10;
  cases[2].top_p = 0.8f;
  cases[3].min_p = 0.1f;
  for (const SamplingParams& params : cases) {
    std::mt19937_64 rng(42);
    std::mt19937_64 expected(42);
    sampler.Sample(logits, params, TokenHistory(), -1, rng);
    expected.discard(1);
    EXPECT_EQ(rng, expected);
  }
}

TEST(SamplerTest, EmpiricalFrequenciesMatchSoftmax) {
  const std::vector<float> logits = {0.3f, -1.0f, 1.2f, 0.0f, 2.0f, -0.5f, 0.9f, 1.5f};
  SamplingParams params;
  params.temperature = 0.8f;
  const std::vector<double> p = Softmax(logits, 0.8);
  constexpr int kDraws = 20000;
  std::vector<int> counts(logits.size());
  Sampler sampler;
  std::mt19937_64 rng(2024);
  for (int i = 0; i < kDraws; ++i)
    ++counts[sampler.Sample(logits, params, TokenHistory(), -1, rng).token_id];
  for (size_t i = 0; i < p.size(); ++i) {
    const double sigma = std::sqrt(p[i] * (1 - p[i]) / kDraws);
    EXPECT_NEAR(counts[i] / double{kDraws}, p[i], 5 * sigma) << "token " << i;
  }
}

TEST(SamplerTest, EmpiricalFrequenciesFollowFilteredDistribution) {
  const std::vector<float> logits = LogitsOf({0.1, 0.4, 0.2, 0.3});
  SamplingParams params;
  params.top_p = 0.65f;  // {1, 3} with 4/7, 3/7
  constexpr int kDraws = 20000;
  std::vector<int> counts(4);
  Sampler sampler;
  std::mt19937_64 rng(7);
  for (int i = 0; i < kDraws; ++i)
    ++counts[sampler.Sample(logits, params, TokenHistory(), -1, rng).token_id];
  EXPECT_EQ(counts[0], 0);
  EXPECT_EQ(counts[2], 0);
  const double sigma = std::sqrt((4.0 / 7) * (3.0 / 7) / kDraws);
  EXPECT_NEAR(counts[1] / double{kDraws}, 4.0 / 7, 5 * sigma);
}

TEST(SamplerTest, LogprobsDescribeTheRawDistribution) {
  const std::vector<float> logits = RandomLogits(2000, 13);
  std::vector<double> log_p = Softmax(logits);
  for (double& x : log_p) x = std::log(x);
  SamplingParams params;
  params.temperature = 0.5f;
  params.top_k = 3;
  params.repetition_penalty = 1.7f;
  params.logprobs = 5;
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  TokenHistory history(std::vector<int32_t>{order[0]});
  Sampler sampler;
  std::mt19937_64 rng(3);
  for (int i = 0; i < 20; ++i) {
    const SampledToken token = sampler.Sample(logits, params, history, -1, rng);
    EXPECT_NEAR(token.logprob, log_p[token.token_id], 1e-4);
    ASSERT_EQ(token.top_logprobs.size(), 5u);
    for (int j = 0; j < 5; ++j) {
      EXPECT_EQ(token.top_logprobs[j].token_id, order[j]);
      EXPECT_NEAR(token.top_logprobs[j].logprob, log_p[order[j]], 1e-4);
    }
  }
  params.logprobs = 0;  // the chosen token's logprob only
  EXPECT_TRUE(sampler.Sample(logits, params, history, -1, rng).top_logprobs.empty());
  params.logprobs.reset();
  EXPECT_TRUE(sampler.Sample(logits, params, history, -1, rng).top_logprobs.empty());
}

TEST(SamplerTest, TopLogprobsTiesListLowerIdsFirst) {
  const std::vector<float> logits = {1.0f, 2.0f, 0.0f, 2.0f, 2.0f};
  SamplingParams params;
  params.temperature = 0.0f;
  params.logprobs = 2;
  Sampler sampler;
  std::mt19937_64 rng(1);
  const SampledToken token = sampler.Sample(logits, params, TokenHistory(), -1, rng);
  ASSERT_EQ(token.top_logprobs.size(), 2u);
  EXPECT_EQ(token.top_logprobs[0].token_id, 1);
  EXPECT_EQ(token.top_logprobs[1].token_id, 3);
  const double log_z = std::log(std::exp(1.0) + 3 * std::exp(2.0) + 1.0);
  EXPECT_NEAR(token.top_logprobs[0].logprob, 2.0 - log_z, 1e-6);
  EXPECT_NEAR(TokenLogprob(logits.data(), 5, 2), -log_z, 1e-6);
}

TEST(SamplerTest, SampleTokenWrapperUsesTheSameSampler) {
  const std::vector<float> logits = RandomLogits(100, 17);
  SamplingParams params;
  params.top_k = 5;
  std::mt19937_64 a(5);
  std::mt19937_64 b(5);
  Sampler sampler;
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(SampleToken(logits.data(), 100, params, a),
              sampler.Sample(logits, params, TokenHistory(), -1, b).token_id);
  }
}

TEST(ValidateSamplingParamsTest, DefaultsAndEdgesAreAccepted) {
  EXPECT_TRUE(ValidateSamplingParams(SamplingParams(), 100).ok());
  SamplingParams params;
  params.temperature = 0.0f;
  params.top_k = 0;
  params.top_p = 1.0f;
  params.min_p = 1.0f;
  params.presence_penalty = -2.0f;
  params.frequency_penalty = 2.0f;
  params.stop_token_ids = {0, 99};
  params.stop = {"\n"};
  params.max_tokens = 5;
  params.min_tokens = 5;
  params.logprobs = 20;
  EXPECT_TRUE(ValidateSamplingParams(params, 100).ok());
}

TEST(ValidateSamplingParamsTest, EveryInvalidValueIsRefusedByName) {
  const float nan = std::nanf("");
  const float inf = std::numeric_limits<float>::infinity();
  struct Case {
    std::function<void(SamplingParams&)> change;
    std::string message;
  };
  const std::vector<Case> cases = {
      {[](auto& p) { p.temperature = -0.1f; },
       "temperature must be a finite number >= 0, got -0.1"},
      {[&](auto& p) { p.temperature = nan; }, "temperature must be a finite number >= 0, got nan"},
      {[&](auto& p) { p.temperature = inf; }, "temperature must be a finite number >= 0, got inf"},
      {[](auto& p) { p.top_k = -2; }, "top_k must be -1 or 0 (off) or at least 1, got -2"},
      {[](auto& p) { p.top_p = 1.5f; }, "top_p must be in (0, 1], got 1.5"},
      {[](auto& p) { p.top_p = 0.0f; }, "top_p must be in (0, 1], got 0"},
      {[&](auto& p) { p.top_p = nan; }, "top_p must be in (0, 1], got nan"},
      {[](auto& p) { p.min_p = -0.5f; }, "min_p must be in [0, 1], got -0.5"},
      {[&](auto& p) { p.min_p = nan; }, "min_p must be in [0, 1], got nan"},
      {[](auto& p) { p.repetition_penalty = 0.0f; },
       "repetition_penalty must be a finite number > 0, got 0"},
      {[&](auto& p) { p.repetition_penalty = nan; },
       "repetition_penalty must be a finite number > 0, got nan"},
      {[](auto& p) { p.presence_penalty = 2.5f; }, "presence_penalty must be in [-2, 2], got 2.5"},
      {[&](auto& p) { p.presence_penalty = nan; }, "presence_penalty must be in [-2, 2], got nan"},
      {[](auto& p) { p.frequency_penalty = -3.0f; },
       "frequency_penalty must be in [-2, 2], got -3"},
      {[&](auto& p) { p.frequency_penalty = nan; },
       "frequency_penalty must be in [-2, 2], got nan"},
      {[](auto& p) { p.max_tokens = 0; }, "max_tokens must be at least 1, got 0"},
      {[](auto& p) { p.min_tokens = -1; }, "min_tokens must be at least 0, got -1"},
      {[](auto& p) { p.min_tokens = 17; }, "min_tokens must be at most max_tokens (16), got 17"},
      {[](auto& p) {
         p.stop_token_ids = {3, 100};
       },
       "stop_token_ids must be in [0, 100), got 100"},
      {[](auto& p) { p.stop_token_ids = {-1}; }, "stop_token_ids must be in [0, 100), got -1"},
      {[](auto& p) {
         p.stop = {"ok", ""};
       },
       "stop must not contain an empty string"},
      {[](auto& p) { p.logprobs = 21; }, "logprobs must be in [0, 20], got 21"},
      {[](auto& p) { p.logprobs = -1; }, "logprobs must be in [0, 20], got -1"},
      {[](auto& p) { p.logit_bias = {{100, 1.0f}}; },
       "logit_bias keys must be token ids in [0, 100), got 100"},
      {[](auto& p) { p.logit_bias = {{4, -100.5f}}; },
       "logit_bias values must be in [-100, 100], got -100.5 for token 4"},
      {[&](auto& p) { p.logit_bias = {{4, nan}}; },
       "logit_bias values must be in [-100, 100], got nan for token 4"},
  };
  for (const Case& c : cases) {
    SamplingParams params;
    c.change(params);
    const absl::Status status = ValidateSamplingParams(params, 100);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_EQ(status.message(), c.message);
  }
}

}  // namespace
}  // namespace fox
