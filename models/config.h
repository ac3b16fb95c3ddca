// FoX model configuration: the subset of a checkpoint's config.json that
// changes the math (FOX_MODEL.md section 2), validated at parse time.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace fox {

struct FoxConfig {
  int vocab_size = 0;
  int hidden_size = 0;         // H
  int num_layers = 0;
  int num_heads = 0;           // nH; head_dim = H / nH
  int head_dim = 0;            // d
  int intermediate_size = 0;   // I (resolved from hidden_ratio when null)
  float norm_eps = 1e-6f;      // attention, MLP, output and final RMSNorms
  float qk_norm_eps = 1e-5f;   // QK-norm
  bool use_k_shift = false;
  bool use_v_shift = false;
  bool qk_norm = false;
  bool qk_norm_shared = true;  // q_norm/k_norm are [d] (shared) or [H] (per head)
  bool use_output_gate = false;
  bool use_output_norm = false;
  int bos_token_id = -1;       // -1 when null in config.json
  int eos_token_id = -1;

  int64_t NumParameters() const;  // every tensor of the checkpoint, lm_head included
};

// Parses and validates config.json text. `source` names the file in errors.
absl::StatusOr<FoxConfig> ParseFoxConfig(const std::string& json_text, const std::string& source);
absl::StatusOr<FoxConfig> LoadFoxConfig(const std::string& path);

// Serialises a config in the authors' config.json layout (used by make-model).
std::string FoxConfigToJson(const FoxConfig& config);

// The released configurations plus "tiny" (make-model): tiny, 125m, 360m, 760m.
absl::StatusOr<FoxConfig> NamedFoxConfig(const std::string& name, bool pro = true);

}  // namespace fox
