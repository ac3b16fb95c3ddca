// Writes FoX checkpoints in the official layout: config.json, safetensors
// (single file or shards with an index), tokenizer files and
// tokenizer_config.json. Used by `foxserve make-model` and by tests.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "kernels/dtype.h"
#include "models/config.h"

namespace fox {

// A tensor held in float32, converted to the file dtype on write.
struct HostTensor {
  std::vector<int64_t> shape;
  std::vector<float> values;
};
using TensorMap = std::map<std::string, HostTensor>;

struct RandomInitOptions {
  uint64_t seed = 0;
  float std = 0.02f;  // normal init of the matrices
  // Forget-gate bias per head (same for every layer). Empty: every head gets
  // `default_fgate_bias`.
  std::vector<float> fgate_bias;
  float default_fgate_bias = 6.0f;
};

// Random weights for `config` under the official tensor names.
TensorMap RandomFoxTensors(const FoxConfig& config, const RandomInitOptions& options);

struct WriteOptions {
  DType dtype = DType::kF32;
  int num_shards = 1;  // > 1 writes model-0000k-of-0000n.safetensors + index
};

// Writes config.json and the safetensors file(s) into `dir` (created if needed).
absl::Status WriteFoxCheckpoint(const std::string& dir, const FoxConfig& config,
                                const TensorMap& tensors, const WriteOptions& options);

// Writes one safetensors file from `tensors` (used for shards and by tests).
absl::Status WriteSafetensors(const std::string& path, const TensorMap& tensors, DType dtype);

}  // namespace fox
