#include "tests/support/test_models.h"

#include "kernels/dtype.h"

namespace fox::testing {

FoxConfig SmallTestConfig(bool pro, int intermediate_size, bool qk_norm_shared) {
  FoxConfig c;
  c.vocab_size = 300;
  c.hidden_size = 64;
  c.num_layers = 2;
  c.num_heads = 4;
  c.head_dim = 16;
  c.intermediate_size =
      intermediate_size > 0 ? intermediate_size : DefaultIntermediateSize(c.hidden_size);
  c.use_k_shift = c.use_v_shift = pro;
  c.qk_norm = pro;
  c.qk_norm_shared = qk_norm_shared;
  c.use_output_gate = c.use_output_norm = pro;
  return c;
}

absl::StatusOr<TensorMap> WriteRandomTestModel(const std::string& dir, const FoxConfig& config,
                                               const RandomInitOptions& init,
                                               const WriteOptions& write) {
  TensorMap tensors = RandomFoxTensors(config, init);
  absl::Status status = WriteFoxCheckpoint(dir, config, tensors, write);
  if (!status.ok()) return status;
  return tensors;
}

std::vector<float> RoundTo(DType dtype, const std::vector<float>& values) {
  std::vector<uint16_t> half(values.size());
  std::vector<float> out(values.size());
  if (dtype == DType::kF32) return values;
  ConvertFromF32(values.data(), static_cast<int64_t>(values.size()), dtype, half.data());
  ConvertToF32(half.data(), dtype, static_cast<int64_t>(half.size()), out.data());
  return out;
}

}  // namespace fox::testing
