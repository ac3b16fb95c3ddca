// Tests of the bfloat16 / float16 conversions against references written from
// the formats' definitions: every 16-bit pattern is checked exhaustively, and
// float -> 16-bit rounding at every rounding boundary of the target format.
#include "kernels/dtype.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#if defined(__F16C__)
#include <immintrin.h>
#endif

namespace fox {
namespace {

uint32_t Bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

float FromBits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

bool IsBf16Nan(uint16_t h) { return (h & 0x7f80u) == 0x7f80u && (h & 0x7fu) != 0; }
bool IsF16Nan(uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0; }

// Nearest bfloat16 to a finite or infinite float, ties to even, by comparing
// the two candidate neighbours in double.
uint16_t ReferenceBf16(float f) {
  const uint32_t bits = Bits(f);
  const uint16_t toward_zero = static_cast<uint16_t>(bits >> 16);
  if ((bits & 0xffffu) == 0) return toward_zero;                 // exact (and every infinity)
  const uint16_t away = static_cast<uint16_t>(toward_zero + 1);  // may become inf
  const double x = std::fabs(static_cast<double>(f));
  const double lo = std::fabs(static_cast<double>(FromBits(uint32_t{toward_zero} << 16)));
  const double hi = std::fabs(static_cast<double>(FromBits(uint32_t{away} << 16)));
  // Above the largest finite bfloat16 the "away" candidate is infinity, which
  // IEEE rounding treats as the value 2^128.
  const double hi_value = std::isinf(hi) ? std::ldexp(1.0, 128) : hi;
  if (x - lo < hi_value - x) return toward_zero;
  if (x - lo > hi_value - x) return away;
  return (toward_zero & 1u) ? away : toward_zero;
}

// Exact value of a float16 bit pattern, from the format's definition.
double ReferenceF16Value(uint16_t h) {
  const int exp = (h >> 10) & 0x1f;
  const int man = h & 0x3ff;
  const double sign = (h & 0x8000u) ? -1.0 : 1.0;
  if (exp == 31) return man ? std::nan("") : sign * INFINITY;
  if (exp == 0) return sign * std::ldexp(man, -24);
  return sign * std::ldexp(1024 + man, exp - 25);
}

// Nearest float16 to a float, ties to even, by binary search over the sorted
// table of all finite non-negative halves. 65536 stands in for infinity, as in
// IEEE rounding: values at or above 65520 round to it.
class ReferenceF16Rounder {
 public:
  ReferenceF16Rounder() {
    for (uint32_t h = 0; h <= 0x7c00u; ++h) {
      values_.push_back(h == 0x7c00u ? 65536.0 : ReferenceF16Value(static_cast<uint16_t>(h)));
    }
  }

  uint16_t Round(float f) const {
    const uint16_t sign = (Bits(f) & 0x80000000u) ? 0x8000u : 0;
    if (std::isnan(f)) return sign | 0x7e00u;
    const double x = std::fabs(static_cast<double>(f));
    if (x >= 65536.0) return sign | 0x7c00u;
    // First half strictly greater than x; its predecessor is <= x.
    const auto it = std::upper_bound(values_.begin(), values_.end(), x);
    const uint16_t hi = static_cast<uint16_t>(it - values_.begin());
    const uint16_t lo = static_cast<uint16_t>(hi - 1);
    if (values_[lo] == x) return sign | lo;
    const double down = x - values_[lo], up = values_[hi] - x;
    if (down < up) return sign | lo;
    if (down > up) return sign | hi;
    return sign | ((lo & 1u) ? hi : lo);
  }

  // Value of non-negative half pattern h (h <= 0x7c00, 0x7c00 meaning 65536).
  double Value(uint16_t h) const { return values_[h]; }

 private:
  std::vector<double> values_;
};

TEST(Bf16Test, ToF32IsExactForEveryPattern) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = Bf16ToF32(static_cast<uint16_t>(h));
    EXPECT_EQ(Bits(f), h << 16) << "pattern " << h;
  }
}

TEST(Bf16Test, RoundsToNearestEvenOnChosenPatterns) {
  struct Case {
    uint32_t f32;
    uint16_t bf16;
  };
  const Case cases[] = {
      {0x3f800000u, 0x3f80u},  // 1.0, exact
      {0x3f807fffu, 0x3f80u},  // just below half an ulp: down
      {0x3f808000u, 0x3f80u},  // tie, even neighbour below: down
      {0x3f808001u, 0x3f81u},  // just above half: up
      {0x3f818000u, 0x3f82u},  // tie, odd below: up to even
      {0x3f817fffu, 0x3f81u},
      {0xbf818000u, 0xbf82u},  // negative tie: away from zero to even
      {0xbf808000u, 0xbf80u},
      {0x3fffffffu, 0x4000u},  // carry into the exponent
      {0x7f7f7fffu, 0x7f7fu},  // largest finite bf16 stays finite
      {0x7f7f8000u, 0x7f80u},  // tie above the largest finite: inf (odd below)
      {0x7f7fffffu, 0x7f80u},  // FLT_MAX rounds to inf
      {0xff7fffffu, 0xff80u},
      {0x7f800000u, 0x7f80u},  // +inf
      {0xff800000u, 0xff80u},  // -inf
      {0x00000000u, 0x0000u},  // +0
      {0x80000000u, 0x8000u},  // -0
      {0x00000001u, 0x0000u},  // smallest subnormal: to zero
      {0x00008000u, 0x0000u},  // subnormal tie, even below
      {0x00018000u, 0x0002u},  // subnormal tie, odd below
      {0x00017fffu, 0x0001u},
      {0x807fffffu, 0x8080u},  // largest subnormal rounds up to the smallest normal
      {0x00400000u, 0x0040u},  // exact subnormal
  };
  for (const Case& c : cases) {
    EXPECT_EQ(F32ToBf16(FromBits(c.f32)), c.bf16) << std::hex << "f32 bits 0x" << c.f32;
    EXPECT_EQ(ReferenceBf16(FromBits(c.f32)), c.bf16) << std::hex << "reference, 0x" << c.f32;
  }
}

TEST(Bf16Test, NanStaysNanWithItsSign) {
  // Payloads only in the low 16 bits would truncate to infinity.
  const uint32_t nans[] = {0x7f800001u, 0x7f80ffffu, 0x7fc00000u, 0x7fffffffu,
                           0xff800001u, 0xffc00000u, 0xffffffffu, 0x7fbf8000u};
  for (uint32_t n : nans) {
    const uint16_t h = F32ToBf16(FromBits(n));
    EXPECT_TRUE(IsBf16Nan(h)) << std::hex << "0x" << n << " -> 0x" << h;
    EXPECT_EQ(h & 0x8000u, (n >> 16) & 0x8000u) << std::hex << "0x" << n;
  }
}

TEST(Bf16Test, RoundTripsEveryPattern) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const uint16_t back = F32ToBf16(Bf16ToF32(static_cast<uint16_t>(h)));
    if (IsBf16Nan(static_cast<uint16_t>(h))) {
      EXPECT_TRUE(IsBf16Nan(back)) << h;
      EXPECT_EQ(back & 0x8000u, h & 0x8000u) << h;
    } else {
      EXPECT_EQ(back, h);
    }
  }
}

TEST(Bf16Test, MatchesReferenceOnRandomFloats) {
  std::mt19937 rng(11);
  int64_t rounded_up = 0, ties = 0;
  for (int i = 0; i < 2000000; ++i) {
    uint32_t bits = rng();
    if (i % 4 == 0) bits = (bits & 0xffff0000u) | 0x8000u;  // many exact ties
    const float f = FromBits(bits);
    if (std::isnan(f)) continue;
    const uint16_t got = F32ToBf16(f);
    ASSERT_EQ(got, ReferenceBf16(f)) << std::hex << "bits 0x" << bits;
    rounded_up += got != (bits >> 16);
    ties += (bits & 0xffffu) == 0x8000u;
  }
  // The sample really exercised both directions and the tie rule.
  EXPECT_GT(rounded_up, 500000);
  EXPECT_GT(ties, 400000);
}

TEST(F16Test, ToF32MatchesDefinitionForEveryPattern) {
  int nans = 0;
  for (uint32_t h = 0; h < 65536; ++h) {
    const float got = F16ToF32(static_cast<uint16_t>(h));
    const double want = ReferenceF16Value(static_cast<uint16_t>(h));
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(got)) << h;
      EXPECT_EQ(std::signbit(got), (h & 0x8000u) != 0) << h;
      ++nans;
      continue;
    }
    // Every half is exactly a float; compare bits so that -0 is told from +0.
    EXPECT_EQ(Bits(got), Bits(static_cast<float>(want))) << "pattern " << h;
#if defined(__F16C__)
    EXPECT_EQ(Bits(got), Bits(_cvtsh_ss(static_cast<uint16_t>(h)))) << "pattern " << h;
#endif
  }
  EXPECT_EQ(nans, 2 * 1023);
}

TEST(F16Test, RoundTripsEveryPattern) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const uint16_t back = F32ToF16(F16ToF32(static_cast<uint16_t>(h)));
    if (IsF16Nan(static_cast<uint16_t>(h))) {
      EXPECT_TRUE(IsF16Nan(back)) << h;
      EXPECT_EQ(back & 0x8000u, h & 0x8000u) << h;
    } else {
      EXPECT_EQ(back, h) << "pattern " << h;
    }
  }
}

// Every rounding boundary of float16: for each pair of adjacent halves (and the
// largest finite one next to infinity), the exact midpoint and its float
// neighbours on both sides, with both signs.
TEST(F16Test, RoundsAtEveryBoundaryLikeReference) {
  const ReferenceF16Rounder ref;
  int64_t checked = 0;
  for (uint32_t h = 0; h < 0x7c00u; ++h) {
    const float lo = static_cast<float>(ref.Value(static_cast<uint16_t>(h)));
    const double mid_exact =
        0.5 * (ref.Value(static_cast<uint16_t>(h)) + ref.Value(static_cast<uint16_t>(h + 1)));
    const float mid = static_cast<float>(mid_exact);
    ASSERT_EQ(static_cast<double>(mid), mid_exact) << "midpoint not a float at " << h;
    const uint16_t even = (h & 1u) ? static_cast<uint16_t>(h + 1) : static_cast<uint16_t>(h);
    const float points[] = {lo, mid, std::nextafter(mid, 0.0f), std::nextafter(mid, INFINITY)};
    const uint16_t want[] = {static_cast<uint16_t>(h), even, static_cast<uint16_t>(h),
                             static_cast<uint16_t>(h + 1)};
    for (int p = 0; p < 4; ++p) {
      for (float s : {1.0f, -1.0f}) {
        const float f = s * points[p];
        const uint16_t sign = s < 0 ? 0x8000u : 0;
        ASSERT_EQ(ref.Round(f), sign | want[p]) << "reference at " << h << " point " << p;
        ASSERT_EQ(F32ToF16(f), sign | want[p]) << "half " << h << " point " << p << " value " << f;
#if defined(__F16C__)
        ASSERT_EQ(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT), sign | want[p]) << h;
#endif
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 0x7c00 * 8);
}

TEST(F16Test, RoundsSpecialValues) {
  struct Case {
    float f;
    uint16_t f16;
  };
  const Case cases[] = {
      {0.0f, 0x0000u},
      {-0.0f, 0x8000u},
      {std::ldexp(1.0f, -25), 0x0000u},  // half the smallest subnormal: tie to zero
      {std::nextafter(std::ldexp(1.0f, -25), 1.0f), 0x0001u},
      {std::ldexp(3.0f, -25), 0x0002u},     // 1.5 subnormal ulps: tie to even (2)
      {std::ldexp(1.0f, -30), 0x0000u},     // far below: zero
      {-std::ldexp(1.0f, -30), 0x8000u},    // keeps the sign of zero
      {std::ldexp(1.0f, -149), 0x0000u},    // float subnormal
      {std::ldexp(1023.5f, -24), 0x0400u},  // largest subnormal + half: to the smallest normal
      {65504.0f, 0x7bffu},
      {std::nextafter(65520.0f, 0.0f), 0x7bffu},
      {65520.0f, 0x7c00u},  // tie between 65504 (odd) and 65536: infinity
      {-65520.0f, 0xfc00u},
      {1e10f, 0x7c00u},
      {INFINITY, 0x7c00u},
      {-INFINITY, 0xfc00u},
      {1.0f, 0x3c00u},
      {std::nextafter(1.0f, 2.0f), 0x3c00u},
      {1.0f + std::ldexp(1.0f, -11), 0x3c00u},         // tie, even below
      {1.0f + 3.0f * std::ldexp(1.0f, -11), 0x3c02u},  // tie, odd below
  };
  for (const Case& c : cases) {
    EXPECT_EQ(F32ToF16(c.f), c.f16) << "value " << c.f;
  }
  EXPECT_TRUE(IsF16Nan(F32ToF16(NAN)));
  EXPECT_EQ(F32ToF16(-NAN) & 0x8000u, 0x8000u);
}

TEST(F16Test, MatchesReferenceOnRandomFloats) {
  const ReferenceF16Rounder ref;
  std::mt19937 rng(12);
  std::uniform_real_distribution<float> log2_magnitude(-27.0f, 17.0f);
  int64_t nonzero_finite = 0;
  for (int i = 0; i < 1000000; ++i) {
    float f;
    if (i % 2 == 0) {
      f = FromBits(rng());  // any pattern: mostly out of half range
      if (std::isnan(f)) continue;
    } else {
      // Magnitudes across the whole half range, subnormals included.
      f = std::exp2(log2_magnitude(rng)) * ((rng() & 1u) ? -1.0f : 1.0f);
    }
    const uint16_t got = F32ToF16(f);
    ASSERT_EQ(got, ref.Round(f)) << "value " << f << std::hex << " bits 0x" << Bits(f);
    nonzero_finite += (got & 0x7fffu) != 0 && (got & 0x7c00u) != 0x7c00u;
  }
  EXPECT_GT(nonzero_finite, 400000);
}

TEST(DTypeTest, ArrayConversionsMatchScalarOnes) {
  std::mt19937 rng(13);
  std::normal_distribution<float> normal(0.0f, 100.0f);
  std::vector<float> src(1001);
  for (float& x : src) x = normal(rng);
  src[0] = -0.0f;
  src[1] = INFINITY;

  std::vector<uint16_t> bf16(src.size()), f16(src.size());
  ConvertFromF32(src.data(), static_cast<int64_t>(src.size()), DType::kBF16, bf16.data());
  ConvertFromF32(src.data(), static_cast<int64_t>(src.size()), DType::kF16, f16.data());
  std::vector<float> from_bf16(src.size()), from_f16(src.size()), from_f32(src.size());
  ConvertToF32(bf16.data(), DType::kBF16, static_cast<int64_t>(src.size()), from_bf16.data());
  ConvertToF32(f16.data(), DType::kF16, static_cast<int64_t>(src.size()), from_f16.data());
  std::vector<float> f32_copy(src.size());
  ConvertFromF32(src.data(), static_cast<int64_t>(src.size()), DType::kF32, f32_copy.data());
  ConvertToF32(f32_copy.data(), DType::kF32, static_cast<int64_t>(src.size()), from_f32.data());
  for (size_t i = 0; i < src.size(); ++i) {
    ASSERT_EQ(bf16[i], F32ToBf16(src[i])) << i;
    ASSERT_EQ(f16[i], F32ToF16(src[i])) << i;
    ASSERT_EQ(Bits(from_bf16[i]), Bits(Bf16ToF32(bf16[i]))) << i;
    ASSERT_EQ(Bits(from_f16[i]), Bits(F16ToF32(f16[i]))) << i;
    ASSERT_EQ(Bits(from_f32[i]), Bits(src[i])) << i;
  }
  EXPECT_EQ(DTypeSize(DType::kF32), 4);
  EXPECT_EQ(DTypeSize(DType::kBF16), 2);
  EXPECT_EQ(DTypeSize(DType::kF16), 2);
  EXPECT_STREQ(DTypeName(DType::kBF16), "bfloat16");
}

}  // namespace
}  // namespace fox
