// Element types the kernels read and write, and conversions between them.
// bfloat16 and float16 are stored as raw 16-bit patterns; conversion to float
// is exact, conversion from float rounds to nearest even.
#pragma once

#include <cstdint>
#include <cstring>

namespace fox {

enum class DType : uint8_t { kF32, kBF16, kF16 };

inline int DTypeSize(DType t) { return t == DType::kF32 ? 4 : 2; }
const char* DTypeName(DType t);

inline float Bf16ToF32(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline uint16_t F32ToBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);  // NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);  // round to nearest even
  return static_cast<uint16_t>(bits >> 16);
}

float F16ToF32(uint16_t h);
uint16_t F32ToF16(float f);

// Converts n elements of `src` (of type `src_type`) to float.
void ConvertToF32(const void* src, DType src_type, int64_t n, float* dst);
// Converts n floats to `dst_type`, rounding to nearest even.
void ConvertFromF32(const float* src, int64_t n, DType dst_type, void* dst);

}  // namespace fox
