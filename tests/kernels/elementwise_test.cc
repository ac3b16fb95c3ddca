// Tests of the row-wise and element-wise ops against double references on
// random data, including the inputs where a naive formula overflows.
#include "kernels/cpu/elementwise.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "kernels/dtype.h"

namespace fox::cpu {
namespace {

std::vector<float> RandomVector(int64_t n, float mean, float stddev, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(mean, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

// log(sigmoid(z)) in double, stable for any z.
double ReferenceLogSigmoid(double z) {
  return z < 0 ? z - std::log1p(std::exp(z)) : -std::log1p(std::exp(-z));
}

// x / sqrt(mean(x^2) + eps) * w over one group of `dim` values.
void ReferenceRmsNorm(const float* x, int64_t dim, const float* w, double eps, double* y) {
  double sum_sq = 0.0;
  for (int64_t i = 0; i < dim; ++i) sum_sq += double{x[i]} * x[i];
  const double inv = 1.0 / std::sqrt(sum_sq / static_cast<double>(dim) + eps);
  for (int64_t i = 0; i < dim; ++i) y[i] = x[i] * inv * w[i];
}

TEST(RmsNormTest, MatchesDoubleReference) {
  struct Shape {
    int64_t rows, dim;
  };
  // Few rows run serially, many rows in parallel; 67 exercises the scalar tails.
  for (const Shape s : {Shape{3, 67}, Shape{4, 1536}, Shape{40, 1536}}) {
    std::vector<float> x = RandomVector(s.rows * s.dim, 0.3f, 2.0f, 10 + s.rows);
    // Row 1 is tiny, so that eps (1e-6) is comparable to its mean square and a
    // misplaced eps shows.
    for (int64_t i = 0; i < s.dim; ++i) x[s.dim + i] *= 5e-4f;
    const std::vector<float> w = RandomVector(s.dim, 1.0f, 0.5f, 20 + s.dim);
    const float eps = 1e-6f;
    std::vector<float> y(x.size(), std::nanf(""));
    RmsNorm(x.data(), s.rows, s.dim, w.data(), eps, y.data());
    std::vector<float> in_place = x;
    RmsNorm(in_place.data(), s.rows, s.dim, w.data(), eps, in_place.data());
    std::vector<double> ref(s.dim);
    for (int64_t r = 0; r < s.rows; ++r) {
      ReferenceRmsNorm(x.data() + r * s.dim, s.dim, w.data(), eps, ref.data());
      for (int64_t i = 0; i < s.dim; ++i) {
        const int64_t at = r * s.dim + i;
        ASSERT_NEAR(y[at], ref[i], 4e-6 * std::fabs(ref[i]) + 1e-30) << "row " << r << " i " << i;
        ASSERT_EQ(in_place[at], y[at]) << "aliased output differs, row " << r << " i " << i;
      }
    }
  }
}

TEST(GroupRmsNormTest, SharedAndPerGroupWeightsMatchDoubleReference) {
  const int64_t groups = 24, dim = 64;
  for (int64_t rows : {1, 3, 20}) {  // 20 * 24 groups run in parallel
    const std::vector<float> x = RandomVector(rows * groups * dim, -0.2f, 1.5f, 30 + rows);
    const std::vector<float> w_shared = RandomVector(dim, 1.0f, 0.3f, 40);
    const std::vector<float> w_per_group = RandomVector(groups * dim, 1.0f, 0.3f, 41);
    const float eps = 1e-5f;
    for (const bool shared : {true, false}) {
      std::vector<float> y = x;
      const float* w = shared ? w_shared.data() : w_per_group.data();
      GroupRmsNorm(y.data(), rows, groups, dim, w, shared ? 0 : dim, eps);
      std::vector<double> ref(dim);
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t g = 0; g < groups; ++g) {
          const int64_t base = (r * groups + g) * dim;
          ReferenceRmsNorm(x.data() + base, dim, shared ? w : w + g * dim, eps, ref.data());
          for (int64_t i = 0; i < dim; ++i) {
            ASSERT_NEAR(y[base + i], ref[i], 2e-6 * std::fabs(ref[i]) + 1e-30)
                << (shared ? "shared" : "per-group") << " r " << r << " g " << g << " i " << i;
          }
        }
      }
    }
  }
}

TEST(LogSigmoidTest, MatchesDoubleReferenceWithoutOverflow) {
  const int64_t rows = 7, cols = 24;
  std::vector<float> x = RandomVector(rows * cols, 0.0f, 6.0f, 50);
  const std::vector<float> bias = RandomVector(cols, 2.0f, 1.0f, 51);
  // Large |z| where exp() of the naive formula overflows or underflows.
  const float extremes[] = {-1e30f, -1e4f, -200.0f, -90.0f, -30.0f, 30.0f, 90.0f, 1e4f, 1e30f};
  for (int i = 0; i < 9; ++i) x[2 * cols + i] = extremes[i] - bias[i];
  std::vector<float> z(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) z[r * cols + c] = x[r * cols + c] + bias[c];
  }
  LogSigmoidWithBiasInPlace(x.data(), rows, cols, bias.data());
  for (int64_t i = 0; i < rows * cols; ++i) {
    const double ref = ReferenceLogSigmoid(z[i]);
    ASSERT_TRUE(std::isfinite(x[i])) << "z = " << z[i];
    ASSERT_LE(x[i], 0.0f) << "z = " << z[i];
    ASSERT_NEAR(x[i], ref, 2e-6 * std::fabs(ref) + 1e-44) << "z = " << z[i];
  }
  // Spot values: a forget gate that is nearly closed and one nearly open.
  EXPECT_FLOAT_EQ(x[2 * cols + 1], -1e4f);
  EXPECT_NEAR(x[2 * cols + 5], -std::exp(-30.0), 1e-19);
}

TEST(SigmoidTest, MatchesDoubleReference) {
  std::vector<float> x = RandomVector(70000, 0.5f, 8.0f, 60);  // parallel path
  x[0] = -1000.0f;
  x[1] = 1000.0f;
  const std::vector<float> in = x;
  SigmoidInPlace(x.data(), static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    const double ref = 1.0 / (1.0 + std::exp(-double{in[i]}));
    ASSERT_NEAR(x[i], ref, 1e-6 * ref + 1e-44) << "x = " << in[i];
  }
  EXPECT_EQ(x[0], 0.0f);
  EXPECT_EQ(x[1], 1.0f);
}

TEST(SiluMulTest, MatchesDoubleReference) {
  const int64_t I = 1000;
  for (int64_t rows : {1, 3, 40}) {  // 40 rows run in parallel
    std::vector<float> gu = RandomVector(rows * 2 * I, 0.0f, 4.0f, 70 + rows);
    // Gates whose exp(-g) overflows float.
    gu[0] = -100.0f;
    gu[1] = -1000.0f;
    gu[2] = 100.0f;
    std::vector<float> out(rows * I, std::nanf(""));
    SiluMul(gu.data(), rows, I, out.data());
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t i = 0; i < I; ++i) {
        const double g = gu[r * 2 * I + i], u = gu[r * 2 * I + I + i];
        const double ref = g / (1.0 + std::exp(-g)) * u;
        ASSERT_TRUE(std::isfinite(out[r * I + i])) << "g = " << g;
        ASSERT_NEAR(out[r * I + i], ref, 2e-6 * std::fabs(ref) + 1e-38)
            << "r " << r << " i " << i << " g " << g << " u " << u;
      }
    }
    EXPECT_NEAR(out[2], 100.0 * gu[I + 2], 1e-4 * std::fabs(gu[I + 2]));
  }
}

TEST(AddMulInPlaceTest, MatchExactFloatArithmetic) {
  for (int64_t n : {int64_t{37}, int64_t{70001}}) {
    const std::vector<float> a = RandomVector(n, 1.0f, 3.0f, 80 + n);
    const std::vector<float> b = RandomVector(n, -1.0f, 3.0f, 90 + n);
    std::vector<float> sum = a, prod = a;
    AddInPlace(sum.data(), b.data(), n);
    MulInPlace(prod.data(), b.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(sum[i], a[i] + b[i]) << i;  // one rounding: exact in float
      ASSERT_EQ(prod[i], a[i] * b[i]) << i;
    }
  }
}

TEST(EmbeddingLookupTest, GathersRowsOfEveryTableType) {
  const int64_t V = 300, dim = 72;
  const std::vector<float> values = RandomVector(V * dim, 0.0f, 0.7f, 100);
  const int32_t ids[] = {5, 0, 299, 5, 137, 298, 1};
  const int64_t num_ids = 7;
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    std::vector<uint8_t> table(V * dim * DTypeSize(dtype));
    ConvertFromF32(values.data(), V * dim, dtype, table.data());
    std::vector<float> out(num_ids * dim, std::nanf(""));
    EmbeddingLookup(table.data(), dtype, dim, ids, num_ids, out.data());
    for (int64_t t = 0; t < num_ids; ++t) {
      for (int64_t i = 0; i < dim; ++i) {
        const float v = values[ids[t] * dim + i];
        // The table holds v rounded to the type; the lookup converts exactly.
        float want = v;
        if (dtype == DType::kBF16) want = Bf16ToF32(F32ToBf16(v));
        if (dtype == DType::kF16) want = F16ToF32(F32ToF16(v));
        ASSERT_EQ(out[t * dim + i], want) << DTypeName(dtype) << " t " << t << " i " << i;
        // And the rounding is as close as the type allows.
        const double rel = dtype == DType::kBF16  ? 1.0 / 256
                           : dtype == DType::kF16 ? 1.0 / 2048
                                                  : 0;
        ASSERT_LE(std::fabs(double{want} - v), rel * std::fabs(v) + 1e-7);
      }
    }
  }
}

}  // namespace
}  // namespace fox::cpu
