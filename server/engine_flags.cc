#include "server/engine_flags.h"

#include "engine/kv_budget.h"
#include "server/dtype_flags.h"

namespace fox {

void EngineFlags::Register(FlagSet& flags) {
  flags.Add("kv-cache-memory", &kv_cache_memory,
            "KV cache pool size: bytes (4GiB, 512MB, ...) or a fraction of available memory");
  flags.Add("kv-dtype", &kv_dtype, "KV cache dtype: float32 or bfloat16");
  flags.Add("block-size", &block_size, "tokens per KV block (one layer, one head)");
  flags.Add("max-model-len", &max_model_len,
            "longest prompt + max_tokens admitted, and ACP's L_max (0: the tokenizer's "
            "model_max_length)");
  flags.Add("max-num-batched-tokens", &max_num_batched_tokens, "tokens computed per engine step");
  flags.Add("max-num-seqs", &max_num_seqs, "requests running at once");
  flags.Add("max-queued-requests", &max_queued_requests,
            "waiting requests past which new ones are refused");
  flags.Add("acp", &acp, "ACP eviction and attention skipping: on or off");
  flags.Add("acp-log-eps", &acp_log_eps, "log of ACP's tolerance eps");
  flags.Add("threads", &threads, "CPU threads of the engine (0: all cores)");
}

absl::StatusOr<EngineConfig> EngineFlags::ToConfig(const FoxConfig& model) const {
  EngineConfig config;
  if (acp != "on" && acp != "off") return absl::InvalidArgumentError("--acp must be on or off");
  config.acp = acp == "on";
  config.acp_log_eps = acp_log_eps;
  absl::StatusOr<DType> dtype = ParseWeightDType("--kv-dtype", kv_dtype);
  if (!dtype.ok()) return dtype.status();
  config.kv_dtype = *dtype;
  if (block_size < 1 || block_size > 256) {
    return absl::InvalidArgumentError("--block-size must be in [1, 256]");
  }
  config.block_size = static_cast<int32_t>(block_size);
  absl::StatusOr<int64_t> bytes = ParseKvCacheMemory(kv_cache_memory);
  if (!bytes.ok()) return bytes.status();
  absl::StatusOr<int32_t> blocks =
      KvBlocksForBudget(*bytes, config.block_size, model.head_dim, config.kv_dtype);
  if (!blocks.ok()) return blocks.status();
  config.num_kv_blocks = *blocks;
  config.max_model_len = max_model_len;
  config.max_num_batched_tokens = max_num_batched_tokens;
  if (max_num_seqs < 1 || max_num_seqs > (int64_t{1} << 20)) {
    return absl::InvalidArgumentError("--max-num-seqs must be in [1, 2^20]");
  }
  config.max_num_seqs = static_cast<int32_t>(max_num_seqs);
  config.max_queued_requests = max_queued_requests;
  if (threads < 0 || threads > 4096) return absl::InvalidArgumentError("--threads must be in [0, 4096]");
  config.cpu_threads = static_cast<int32_t>(threads);
  if (max_model_len < 0) return absl::InvalidArgumentError("--max-model-len must be at least 0");
  return config;  // EngineCore::Create checks the rest once max_model_len is resolved
}

}  // namespace fox
