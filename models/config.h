// FoX model configuration: the subset of a checkpoint's config.json that
// changes the math (FOX_MODEL.md section 2), validated at parse time.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace fox {

struct FoxConfig {
  int vocab_size = 0;
  int hidden_size = 0;  // H
  int num_layers = 0;
  int num_heads = 0;          // nH; head_dim = H / nH
  int head_dim = 0;           // d
  int intermediate_size = 0;  // I (resolved from hidden_ratio when null)
  float norm_eps = 1e-6f;     // attention, MLP, output and final RMSNorms
  float qk_norm_eps = 1e-5f;  // QK-norm
  bool use_k_shift = false;
  bool use_v_shift = false;
  bool qk_norm = false;
  bool qk_norm_shared = true;  // q_norm/k_norm are [d] (shared) or [H] (per head)
  bool use_output_gate = false;
  bool use_output_norm = false;
  int bos_token_id = -1;  // -1 when null in config.json
  int eos_token_id = -1;

  int64_t NumParameters() const;  // every tensor of the checkpoint, lm_head included

  bool operator==(const FoxConfig&) const = default;
};

// Parses and validates config.json text. `source` names the file in errors.
// A field that would change the math away from FoX (RoPE, another forget-gate
// type, GQA, tied embeddings, ...) is InvalidArgument naming the field and
// `source`; fields that do not change the math are ignored.
// `qk_norm_share_param_across_head` defaults to false when absent, as in the
// authors' current code; LoadCheckpoint settles an absent one from the
// tensor shapes instead.
absl::StatusOr<FoxConfig> ParseFoxConfig(const std::string& json_text, const std::string& source);
absl::StatusOr<FoxConfig> LoadFoxConfig(const std::string& path);

// I = 256 * ceil(int(H * hidden_ratio * 2/3) / 256), the authors' rule for a
// null intermediate_size.
int DefaultIntermediateSize(int hidden_size, double hidden_ratio = 4.0);

// Serialises a config in the authors' config.json layout (used by make-model).
std::string FoxConfigToJson(const FoxConfig& config);

// The released configurations plus "tiny" (make-model): tiny, 125m, 360m, 760m.
// pro = true: FoX-Pro (k/v shift, shared QK-norm, output gate and norm);
// pro = false: FoX-LLaMA (none of those four).
absl::StatusOr<FoxConfig> NamedFoxConfig(const std::string& name, bool pro = true);

}  // namespace fox
