#include "models/unicode_classes.h"

#include <array>
#include <memory>

#include "unicode/uchar.h"

namespace fox {
namespace {

CharClass ClassifyWithIcu(char32_t c) {
  const UChar32 cp = static_cast<UChar32>(c);
  // White_Space first: no code point is both a space and a letter or number,
  // and the order keeps the answer obvious if a future Unicode disagreed.
  if (u_hasBinaryProperty(cp, UCHAR_WHITE_SPACE)) return CharClass::kSpace;
  const uint32_t category_mask = U_GET_GC_MASK(cp);
  if (category_mask & U_GC_L_MASK) return CharClass::kLetter;
  if (category_mask & U_GC_N_MASK) return CharClass::kNumber;
  return CharClass::kOther;
}

using BmpTable = std::array<CharClass, 0x10000>;

std::unique_ptr<BmpTable> BuildBmpTable() {
  auto table = std::make_unique<BmpTable>();
  for (char32_t c = 0; c < 0x10000; ++c) (*table)[c] = ClassifyWithIcu(c);
  return table;
}

}  // namespace

CharClass ClassifyCodePoint(char32_t c) {
  // Function-local static: built once, thread-safe initialisation.
  static const std::unique_ptr<BmpTable> bmp = BuildBmpTable();
  if (c < 0x10000) return (*bmp)[c];
  return ClassifyWithIcu(c);
}

}  // namespace fox
