// Writes FoX checkpoints in the official layout: config.json, safetensors
// (single file or shards with an index), tokenizer files and
// tokenizer_config.json. Used by `foxserve make-model` and by tests.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "kernels/dtype.h"
#include "models/config.h"
#include "models/weights.h"

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
  std::vector<float> fgate_bias = {};
  float default_fgate_bias = 6.0f;
};

// Random weights for `config` under the official tensor names: matrices
// N(0, std), RMSNorm weights 1 + 0.1 N(0, 1) (so that tests see non-trivial
// norms), forget-gate biases from `options`. Deterministic in `options.seed`.
// A non-empty options.fgate_bias must hold config.num_heads values (checked).
TensorMap RandomFoxTensors(const FoxConfig& config, const RandomInitOptions& options);
// One tensor of RandomFoxTensors, generated alone with the same values, so a
// model too large to hold twice can be written tensor by tensor.
HostTensor RandomFoxTensor(const TensorSpec& spec, const RandomInitOptions& options);

struct WriteOptions {
  DType dtype = DType::kF32;
  int num_shards = 1;  // > 1 writes model-0000k-of-0000n.safetensors + index
};

// Writes config.json and the safetensors file(s) into `dir` (created if
// needed), replacing any safetensors files already there. Every tensor of
// `tensors` is written, whether or not `config` uses it (tests write broken
// checkpoints this way).
absl::Status WriteFoxCheckpoint(const std::string& dir, const FoxConfig& config,
                                const TensorMap& tensors, const WriteOptions& options);

// Hands out one tensor at a time; the reference stays valid until the next call.
using TensorProducer = std::function<const HostTensor&(const TensorSpec& spec)>;

// Streaming form: writes the tensors of FoxTensorSpecs(config), asking
// `produce` for each in turn, so only one tensor is held at a time.
absl::Status WriteFoxCheckpoint(const std::string& dir, const FoxConfig& config,
                                const TensorProducer& produce, const WriteOptions& options);

// Writes one safetensors file from `tensors` (used for shards and by tests).
absl::Status WriteSafetensors(const std::string& path, const TensorMap& tensors, DType dtype);

}  // namespace fox
