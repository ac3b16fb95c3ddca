// FoX weights bound by their official tensor names, in the dtype the model is
// served in. Large matrices point into the memory-mapped checkpoint when its
// dtype matches, and into owned buffers otherwise; small vectors are float32.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/dtype.h"
#include "models/config.h"

namespace fox {

// A non-owning view of one tensor, row-major.
struct Tensor {
  const void* data = nullptr;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;

  bool empty() const { return data == nullptr; }
  int64_t numel() const;
  const float* f32() const { return static_cast<const float*>(data); }
};

struct LayerWeights {
  Tensor attn_norm;    // [H] f32
  Tensor q_proj;       // [H, H]
  Tensor k_proj;       // [H, H]
  Tensor v_proj;       // [H, H]
  Tensor k_shift;      // [nH, H] f32, empty without use_k_shift
  Tensor v_shift;      // [nH, H] f32, empty without use_v_shift
  Tensor fgate_w;      // [nH, H] f32
  Tensor fgate_b;      // [nH] f32
  Tensor q_norm;       // [d] or [H] f32, empty without qk_norm
  Tensor k_norm;       // [d] or [H] f32, empty without qk_norm
  Tensor ogate;        // [H, H], empty without use_output_gate
  Tensor output_norm;  // [H] f32, empty without use_output_norm
  Tensor o_proj;       // [H, H]
  Tensor mlp_norm;     // [H] f32
  Tensor gate_up;      // [2I, H]: rows 0..I-1 gate, I..2I-1 up
  Tensor down;         // [H, I]
};

struct FoxWeights {
  Tensor embeddings;  // [V, H]
  std::vector<LayerWeights> layers;
  Tensor final_norm;          // [H] f32
  Tensor lm_head;             // [V, H]
  DType dtype = DType::kF32;  // dtype of the large matrices

  // Keeps the mapped files and converted buffers alive.
  std::vector<std::shared_ptr<const void>> storage;
};

// One tensor of the checkpoint layout (FOX_MODEL.md section 2): its official
// name, shape, and the field of FoxWeights that holds it. The reader and the
// writer both walk this one list, so they cannot disagree about names.
struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  bool is_matrix = false;  // true: held in the serving dtype; false: float32
  int layer = -1;          // -1 for model-level tensors
  Tensor LayerWeights::*layer_field = nullptr;
  Tensor FoxWeights::*model_field = nullptr;
};

// Every tensor `config` uses, in model order: embeddings, layer 0 .. L-1,
// final norm, lm_head.
std::vector<TensorSpec> FoxTensorSpecs(const FoxConfig& config);

// The Tensor of `weights` that `spec` binds to; `weights.layers` must already
// hold config.num_layers entries.
Tensor& BoundTensor(const TensorSpec& spec, FoxWeights& weights);

}  // namespace fox
