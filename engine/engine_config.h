// The engine's limits, as the `foxserve` flags of the same names set them.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "kernels/dtype.h"

namespace fox {

struct EngineConfig {
  // KV cache: the pool's size in blocks (kv_budget.h turns --kv-cache-memory
  // into this), tokens per block, and K/V dtype.
  int64_t num_kv_blocks = 0;
  int32_t block_size = 16;
  DType kv_dtype = DType::kF32;

  // Longest prompt + max_tokens admitted; also ACP's L_max. 0: the
  // tokenizer's model_max_length.
  int64_t max_model_len = 0;
  int64_t max_num_batched_tokens = 2048;  // tokens per step
  int32_t max_num_seqs = 256;             // requests running at once
  int64_t max_queued_requests = 4096;     // waiting requests past which Submit refuses

  int32_t cpu_threads = 0;     // CPU backend threads; 0: all cores (or OMP_NUM_THREADS)
  bool acp = true;             // eviction and attention skipping; false: neither
  double acp_log_eps = -10.0;  // log of ACP's eps
};

// InvalidArgument naming the flag of the first value out of range.
absl::Status ValidateEngineConfig(const EngineConfig& config);

}  // namespace fox
