// Parses dtype names given on the command line.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "kernels/dtype.h"

namespace fox {

// "float32" / "fp32" / "bfloat16" / "bf16"; anything else is an error naming `flag`.
absl::StatusOr<DType> ParseWeightDType(const std::string& flag, const std::string& value);

}  // namespace fox
