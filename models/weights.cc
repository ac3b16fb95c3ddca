// The official tensor layout of a FoX checkpoint and its binding to FoxWeights.
#include "models/weights.h"

#include "absl/strings/str_cat.h"

namespace fox {

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t dim : shape) n *= dim;
  return n;
}

std::vector<TensorSpec> FoxTensorSpecs(const FoxConfig& c) {
  const int64_t v = c.vocab_size, h = c.hidden_size, nh = c.num_heads, d = c.head_dim,
                i = c.intermediate_size;
  std::vector<TensorSpec> specs;
  auto model = [&](const char* name, std::vector<int64_t> shape, bool is_matrix,
                   Tensor FoxWeights::*field) {
    specs.push_back({name, std::move(shape), is_matrix, -1, nullptr, field});
  };
  model("model.embeddings.weight", {v, h}, true, &FoxWeights::embeddings);
  for (int n = 0; n < c.num_layers; ++n) {
    const std::string prefix = absl::StrCat("model.layers.", n, ".");
    auto layer = [&](const std::string& name, std::vector<int64_t> shape, bool is_matrix,
                     Tensor LayerWeights::*field) {
      specs.push_back({prefix + name, std::move(shape), is_matrix, n, field, nullptr});
    };
    layer("attn_norm.weight", {h}, false, &LayerWeights::attn_norm);
    layer("attn.q_proj.weight", {h, h}, true, &LayerWeights::q_proj);
    // With a shift, the projection is wrapped in a module holding both the
    // linear map and the per-head shift gate, hence the longer names.
    if (c.use_k_shift) {
      layer("attn.k_proj.linear.weight", {h, h}, true, &LayerWeights::k_proj);
      layer("attn.k_proj.shift_proj.weight", {nh, h}, false, &LayerWeights::k_shift);
    } else {
      layer("attn.k_proj.weight", {h, h}, true, &LayerWeights::k_proj);
    }
    if (c.use_v_shift) {
      layer("attn.v_proj.linear.weight", {h, h}, true, &LayerWeights::v_proj);
      layer("attn.v_proj.shift_proj.weight", {nh, h}, false, &LayerWeights::v_shift);
    } else {
      layer("attn.v_proj.weight", {h, h}, true, &LayerWeights::v_proj);
    }
    layer("attn.fgate_proj.weight", {nh, h}, false, &LayerWeights::fgate_w);
    layer("attn.fgate_proj.bias", {nh}, false, &LayerWeights::fgate_b);
    if (c.qk_norm) {
      const int64_t norm = c.qk_norm_shared ? d : h;
      layer("attn.q_norm.weight", {norm}, false, &LayerWeights::q_norm);
      layer("attn.k_norm.weight", {norm}, false, &LayerWeights::k_norm);
    }
    if (c.use_output_gate) layer("attn.ogate_proj.weight", {h, h}, true, &LayerWeights::ogate);
    if (c.use_output_norm) layer("attn.output_norm.weight", {h}, false, &LayerWeights::output_norm);
    layer("attn.o_proj.weight", {h, h}, true, &LayerWeights::o_proj);
    layer("mlp_norm.weight", {h}, false, &LayerWeights::mlp_norm);
    layer("mlp.gate_proj.weight", {2 * i, h}, true, &LayerWeights::gate_up);
    layer("mlp.down_proj.weight", {h, i}, true, &LayerWeights::down);
  }
  model("model.norm.weight", {h}, false, &FoxWeights::final_norm);
  model("lm_head.weight", {v, h}, true, &FoxWeights::lm_head);
  return specs;
}

Tensor& BoundTensor(const TensorSpec& spec, FoxWeights& weights) {
  if (spec.layer < 0) return weights.*spec.model_field;
  return weights.layers[spec.layer].*spec.layer_field;
}

}  // namespace fox
