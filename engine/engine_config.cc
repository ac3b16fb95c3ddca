#include "engine/engine_config.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"

namespace fox {

absl::Status ValidateEngineConfig(const EngineConfig& config) {
  auto bad = [](const char* flag, auto value, const char* want) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " must be ", want, ", got ", value));
  };
  if (config.num_kv_blocks < 1 || config.num_kv_blocks > std::numeric_limits<int32_t>::max()) {
    return bad("--kv-cache-memory (in blocks)", config.num_kv_blocks, "in [1, 2^31)");
  }
  if (config.block_size < 1 || config.block_size > 256) {
    return bad("--block-size", config.block_size, "in [1, 256]");
  }
  if (config.kv_dtype != DType::kF32 && config.kv_dtype != DType::kBF16) {
    return absl::InvalidArgumentError("--kv-dtype must be float32 or bfloat16");
  }
  if (config.max_model_len < 1) return bad("--max-model-len", config.max_model_len, "at least 1");
  if (config.max_num_batched_tokens < 1) {
    return bad("--max-num-batched-tokens", config.max_num_batched_tokens, "at least 1");
  }
  if (config.max_num_seqs < 1) return bad("--max-num-seqs", config.max_num_seqs, "at least 1");
  if (config.max_queued_requests < 1) {
    return bad("--max-queued-requests", config.max_queued_requests, "at least 1");
  }
  if (config.cpu_threads < 0) return bad("--threads", config.cpu_threads, "at least 0");
  if (!std::isfinite(config.acp_log_eps) || config.acp_log_eps >= 0) {
    return bad("--acp-log-eps", config.acp_log_eps, "negative and finite");
  }
  return absl::OkStatus();
}

}  // namespace fox
