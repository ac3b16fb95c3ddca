#include "server/dtype_flags.h"

#include "absl/strings/str_cat.h"

namespace fox {

absl::StatusOr<DType> ParseWeightDType(const std::string& flag, const std::string& value) {
  if (value == "float32" || value == "fp32") return DType::kF32;
  if (value == "bfloat16" || value == "bf16") return DType::kBF16;
  return absl::InvalidArgumentError(
      absl::StrCat(flag, ": unsupported dtype '", value, "' (expected float32 or bfloat16)"));
}

}  // namespace fox
