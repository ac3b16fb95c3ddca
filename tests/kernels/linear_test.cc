// Tests of Linear (y = x W^T) against a double-precision reference, for both
// paths (streaming kernel below kLinearGemmMinRows rows, BLAS at or above) and
// both weight types, plus the batch invariance the streaming kernel promises.
#include "kernels/cpu/linear.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/threading.h"
#include "kernels/dtype.h"

namespace fox::cpu {
namespace {

struct Problem {
  int64_t T, K, N;
  DType w_type;
  std::vector<float> x;       // [T, K]
  std::vector<uint16_t> w16;  // [N, K] when bfloat16
  std::vector<float> w32;     // [N, K]: the weights, or their exact float32 values
  const void* w() const {
    return w_type == DType::kF32 ? static_cast<const void*>(w32.data())
                                 : static_cast<const void*>(w16.data());
  }
};

Problem MakeProblem(int64_t T, int64_t K, int64_t N, DType w_type, uint64_t seed) {
  Problem p{T, K, N, w_type, {}, {}, {}};
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  p.x.resize(T * K);
  for (float& v : p.x) v = normal(rng);
  p.w32.resize(N * K);
  const float w_scale = 1.0f / std::sqrt(static_cast<float>(K));
  for (float& v : p.w32) v = normal(rng) * w_scale + 0.01f;  // a bias keeps sums off zero
  if (w_type == DType::kBF16) {
    p.w16.resize(N * K);
    for (int64_t i = 0; i < N * K; ++i) {
      p.w16[i] = F32ToBf16(p.w32[i]);
      p.w32[i] = Bf16ToF32(p.w16[i]);  // what the kernel really multiplies by
    }
  }
  return p;
}

// Checks y against the double reference: norm-wise per row below 1e-5, and
// each element within the worst-case float32 dot-product bound
// K * 2^-24 * sum_k |x_k w_k| (with a factor 2 of slack), whatever the order
// of summation.
void ExpectMatchesReference(const Problem& p, const std::vector<float>& y,
                            const std::string& what) {
  double worst_rel = 0.0;
  for (int64_t t = 0; t < p.T; ++t) {
    double err_sq = 0.0, ref_sq = 0.0;
    for (int64_t n = 0; n < p.N; ++n) {
      double ref = 0.0, abs_sum = 0.0;
      for (int64_t k = 0; k < p.K; ++k) {
        const double prod = double{p.x[t * p.K + k]} * double{p.w32[n * p.K + k]};
        ref += prod;
        abs_sum += std::fabs(prod);
      }
      const double got = y[t * p.N + n];
      ASSERT_TRUE(std::isfinite(got)) << what << " t=" << t << " n=" << n;
      const double bound = 2.0 * static_cast<double>(p.K) * std::ldexp(1.0, -24) * abs_sum;
      ASSERT_LE(std::fabs(got - ref), bound) << what << " t=" << t << " n=" << n;
      err_sq += (got - ref) * (got - ref);
      ref_sq += ref * ref;
    }
    ASSERT_GT(ref_sq, 0.0);
    worst_rel = std::max(worst_rel, std::sqrt(err_sq / ref_sq));
  }
  EXPECT_LT(worst_rel, 1e-5) << what;
}

std::string Describe(const Problem& p) {
  return "T=" + std::to_string(p.T) + " K=" + std::to_string(p.K) + " N=" + std::to_string(p.N) +
         " w=" + DTypeName(p.w_type);
}

TEST(LinearTest, MatchesDoubleReference) {
  const int64_t row_counts[] = {1, 2, 5, 11, 12, 13, 64, 300};
  const int64_t shapes[][2] = {{67, 129}, {256, 768}, {33, 17}};
  uint64_t seed = 100;
  for (DType w_type : {DType::kF32, DType::kBF16}) {
    for (const auto& kn : shapes) {
      for (int64_t T : row_counts) {
        const Problem p = MakeProblem(T, kn[0], kn[1], w_type, ++seed);
        // Poisoned output: every element must be written, nothing accumulated.
        std::vector<float> y(T * p.N, std::nanf(""));
        Linear(p.x.data(), T, p.K, p.w(), w_type, p.N, y.data());
        ExpectMatchesReference(p, y, Describe(p));
      }
    }
  }
}

// K large enough that bfloat16 weights go through the BLAS in several converted
// panels (the last one partial).
TEST(LinearTest, Bf16ManyPanelsMatchesDoubleReference) {
  for (int64_t T : {1, 12, 37}) {
    const Problem p = MakeProblem(T, 4096, 600, DType::kBF16, 7 + T);
    std::vector<float> y(T * p.N, std::nanf(""));
    Linear(p.x.data(), T, p.K, p.w(), p.w_type, p.N, y.data());
    ExpectMatchesReference(p, y, Describe(p));
  }
}

// Both paths of Linear agree with the streaming kernel called directly above
// the switch-over, so the switch is not a change of meaning.
TEST(LinearTest, StreamingKernelMatchesReferenceAboveSwitchOver) {
  for (DType w_type : {DType::kF32, DType::kBF16}) {
    const Problem p = MakeProblem(40, 256, 768, w_type, 300);
    std::vector<float> y(p.T * p.N, std::nanf(""));
    LinearStreaming(p.x.data(), p.T, p.K, p.w(), w_type, p.N, y.data());
    ExpectMatchesReference(p, y, Describe(p) + " streaming");
  }
}

// Row t of a T-row call is bit-for-bit the 1-row call on row t, so a decode
// step's output does not depend on what else is in the batch.
TEST(LinearTest, StreamingIsBatchInvariant) {
  for (DType w_type : {DType::kF32, DType::kBF16}) {
    for (const auto& kn : {std::pair<int64_t, int64_t>{67, 129}, {256, 768}}) {
      for (int64_t T : {3, 11, 40}) {
        const Problem p = MakeProblem(T, kn.first, kn.second, w_type, 500 + T);
        std::vector<float> batch(T * p.N, std::nanf(""));
        if (T < kLinearGemmMinRows) {
          Linear(p.x.data(), T, p.K, p.w(), w_type, p.N, batch.data());
        } else {
          LinearStreaming(p.x.data(), T, p.K, p.w(), w_type, p.N, batch.data());
        }
        for (int64_t t = 0; t < T; ++t) {
          // A copy at a different address and alignment than inside the batch.
          std::vector<float> row(p.x.begin() + t * p.K, p.x.begin() + (t + 1) * p.K);
          std::vector<float> single(p.N, std::nanf(""));
          Linear(row.data(), 1, p.K, p.w(), w_type, p.N, single.data());
          ASSERT_EQ(std::memcmp(single.data(), batch.data() + t * p.N, p.N * sizeof(float)), 0)
              << Describe(p) << " row " << t;
        }
      }
    }
  }
}

TEST(LinearTest, StreamingDoesNotDependOnThreadCount) {
  const Problem p = MakeProblem(3, 256, 768, DType::kBF16, 900);
  std::vector<float> many(p.T * p.N), one(p.T * p.N);
  Linear(p.x.data(), p.T, p.K, p.w(), p.w_type, p.N, many.data());
  SetCpuNumThreads(1);
  Linear(p.x.data(), p.T, p.K, p.w(), p.w_type, p.N, one.data());
  SetCpuNumThreads(0);
  EXPECT_EQ(std::memcmp(many.data(), one.data(), many.size() * sizeof(float)), 0);
}

}  // namespace
}  // namespace fox::cpu
