// The vectorized vocabulary passes against plain scalar references, on random
// sizes (so every tail length occurs), ties, NaN and -inf.
#include "engine/vocab_math.h"

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace fox {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<float> Random(size_t n, uint64_t seed, float scale = 4.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> x(n);
  for (float& v : x) v = normal(rng);
  return x;
}

int32_t ReferenceArgmax(const std::vector<float>& x) {
  int32_t best = -1;
  for (int32_t i = 0; i < static_cast<int32_t>(x.size()); ++i) {
    if (x[i] > -kInf && (best < 0 || x[i] > x[best])) best = i;
  }
  return best < 0 ? 0 : best;
}

TEST(VocabMathTest, ArgmaxAndMaxMatchAScalarScanAtEverySize) {
  for (size_t n = 1; n < 70; ++n) {
    for (uint64_t seed = 0; seed < 4; ++seed) {
      std::vector<float> x = Random(n, seed * 100 + n);
      // Integer-valued inputs make ties common: the lowest index must win.
      if (seed % 2 == 1) {
        for (float& v : x) v = std::round(v / 4.0f);
      }
      EXPECT_EQ(Argmax(x), ReferenceArgmax(x)) << "n " << n << " seed " << seed;
      EXPECT_EQ(MaxOf(x), x[ReferenceArgmax(x)]);
    }
  }
  std::vector<float> big = Random(50257, 7);
  big[40000] = 100.0f;
  big[12345] = 100.0f;
  EXPECT_EQ(Argmax(big), 12345);
}

TEST(VocabMathTest, NanAndMinusInfinityNeverWin) {
  const float nan = std::nanf("");
  std::vector<float> x(37, -kInf);
  EXPECT_EQ(Argmax(x), 0);
  EXPECT_EQ(MaxOf(x), -kInf);
  x[3] = nan;
  x[20] = -5.0f;
  x[30] = nan;
  EXPECT_EQ(Argmax(x), 20);
  EXPECT_EQ(MaxOf(x), -5.0f);
}

TEST(VocabMathTest, ExpIsWithinTwoMillionthsOfExactAndZeroBelowUnderflow) {
  std::vector<float> x = Random(50257, 3, 20.0f);
  x[0] = -87.5f;
  x[1] = -200.0f;
  x[2] = -kInf;
  x[3] = 0.0f;
  const float shift = MaxOf(x);
  std::vector<float> out(x.size());
  for (const float scale : {1.0f, 1.0f / 0.7f}) {
    ExpShifted(x, shift, scale, out.data());
    for (size_t i = 0; i < x.size(); ++i) {
      // The argument as float computes it: its rounding is not the exp's error.
      const double z = (x[i] - shift) * scale;
      if (z < -87.0) {
        EXPECT_EQ(out[i], 0.0f) << "x " << x[i];
        continue;
      }
      const double exact = std::exp(z);
      ASSERT_NEAR(out[i], exact, 2e-6 * exact) << "x " << x[i] << " scale " << scale;
    }
  }
  EXPECT_EQ(out[2], 0.0f);
}

TEST(VocabMathTest, SumOfExpsMatchesADoubleSum) {
  for (const size_t n : {1u, 9u, 255u, 256u, 257u, 50257u}) {
    const std::vector<float> x = Random(n, n);
    const float shift = MaxOf(x);
    double exact = 0.0;
    for (const float v : x) exact += std::exp(static_cast<double>(v) - shift);
    EXPECT_NEAR(SumExpShifted(x, shift), exact, 2e-6 * exact) << "n " << n;
  }
}

}  // namespace
}  // namespace fox
