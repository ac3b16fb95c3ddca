// The engine's command-line flags, shared by the subcommands that run an
// engine (generate, serve), with vLLM's names where vLLM has the flag.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "engine/engine_config.h"
#include "models/config.h"
#include "server/cli_flags.h"

namespace fox {

struct EngineFlags {
  std::string kv_cache_memory = "4GiB";
  std::string kv_dtype = "float32";
  int64_t block_size = 16;
  int64_t max_model_len = 0;
  int64_t max_num_batched_tokens = 2048;
  int64_t max_num_seqs = 256;
  int64_t max_queued_requests = 4096;
  std::string acp = "on";
  double acp_log_eps = -10.0;
  int64_t threads = 0;

  void Register(FlagSet& flags);
  // The engine configuration for a model of this geometry; errors name the flag.
  absl::StatusOr<EngineConfig> ToConfig(const FoxConfig& model) const;
};

}  // namespace fox
