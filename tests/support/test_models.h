// Small random FoX checkpoints for tests: a tiny configuration and a one-call
// writer that returns the values it wrote.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "models/checkpoint_writer.h"
#include "models/config.h"

namespace fox::testing {

// 2 layers, H = 64, 4 heads of 16, vocabulary 300. pro = true: FoX-Pro (k/v
// shift, QK-norm, output gate and norm); false: FoX-LLaMA. intermediate_size
// 0 takes the authors' formula (256 here). qk_norm_shared only matters for pro.
FoxConfig SmallTestConfig(bool pro, int intermediate_size = 0, bool qk_norm_shared = true);

// Writes config.json and random weights for `config` into `dir` and returns the
// float32 values written (before rounding to write.dtype).
absl::StatusOr<TensorMap> WriteRandomTestModel(const std::string& dir, const FoxConfig& config,
                                               const RandomInitOptions& init = {},
                                               const WriteOptions& write = {});

// `values` rounded to `dtype` and back, as a file of that dtype stores them.
std::vector<float> RoundTo(DType dtype, const std::vector<float>& values);

}  // namespace fox::testing
