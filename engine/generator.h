// Offline generation of one prompt on the CPU backend: chunked prefill, then
// one decode step per token, over a KV pool sized for exactly this request.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/sampler.h"
#include "kernels/dtype.h"
#include "models/checkpoint.h"

namespace fox {

struct GenerateOptions {
  int64_t max_tokens = 16;
  SamplingParams sampling;
  bool stop_at_eos = true;
  int32_t eos_token_id = -1;     // -1: none
  DType kv_dtype = DType::kF32;
  int32_t block_size = 16;
  int64_t prefill_chunk = 2048;  // prompt tokens per forward call
  bool acp = true;
  float acp_log_eps = -10.0f;
};

struct GenerateResult {
  std::vector<int32_t> token_ids;
  std::vector<float> logprobs;     // log p of each chosen token
  std::string finish_reason;       // "stop" or "length"
  double prefill_seconds = 0.0;
  double decode_seconds = 0.0;
  int64_t key_blocks_read = 0;
  int64_t key_blocks_skipped = 0;
};

// Called after each generated token.
using TokenCallback = std::function<void(int32_t token_id, float logprob)>;

absl::StatusOr<GenerateResult> Generate(const Checkpoint& model, absl::Span<const int32_t> prompt,
                                        const GenerateOptions& options,
                                        const TokenCallback& on_token = nullptr);

}  // namespace fox
