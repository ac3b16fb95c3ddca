// Loads a FoX checkpoint in the authors' Hugging Face layout: config.json plus
// model.safetensors, or shards listed in model.safetensors.index.json; float32,
// bfloat16 or float16, memory-mapped.
#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "kernels/dtype.h"
#include "models/config.h"
#include "models/weights.h"

namespace fox {

struct CheckpointOptions {
  // Dtype of the large matrices in memory (float32 or bfloat16). When unset:
  // float32 files stay float32, bfloat16 stays bfloat16, float16 becomes float32.
  std::optional<DType> dtype;
};

struct Checkpoint {
  std::string dir;
  FoxConfig config;
  FoxWeights weights;
  DType file_dtype = DType::kF32;  // dtype of the matrices in the files
};

// Every error names the file and, where one is involved, the tensor.
absl::StatusOr<Checkpoint> LoadCheckpoint(const std::string& dir,
                                          const CheckpointOptions& options = {});

}  // namespace fox
