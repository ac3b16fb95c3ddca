// The FoX forward pass on the CPU backend, as a straight list of kernel calls
// (FOX_MODEL.md section 1). One call runs a batch of sequences, each with any
// number of new tokens (a prefill chunk or one decode token), reading and
// writing the per-head paged KV cache.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "kernels/cpu/forget_attention.h"
#include "kernels/paged_kv.h"
#include "models/config.h"
#include "models/sequence_state.h"
#include "models/weights.h"

namespace fox {

struct ForwardSequence {
  absl::Span<const int32_t> tokens;          // the new tokens; ids < vocab_size
  SequenceState* state = nullptr;            // read and advanced by the call
  // [num_layers * num_heads] tables, (layer, head) row-major; each must hold
  // blocks up to position state->num_tokens + tokens.size() - 1.
  const HeadBlockTable* tables = nullptr;
  bool all_logits = false;                   // logits for every new token, not just the last
};

struct ForwardOptions {
  bool acp = true;          // ACP compute skipping in attention
  float acp_log_eps = -10;  // log of ACP's tolerance eps
};

struct ForwardCounters {
  int64_t key_blocks_read = 0;
  int64_t key_blocks_skipped = 0;
  double attention_seconds = 0;  // wall time in the attention kernel, all layers
};

class CpuForward {
 public:
  // `weights` must outlive this object.
  CpuForward(const FoxConfig& config, const FoxWeights& weights, const ForwardOptions& options);

  // Runs the batch. `logits` receives [rows, vocab]: for each sequence in
  // order, one row per new token when all_logits, else one row for its last.
  // Not thread-safe (scratch buffers are members); one caller at a time.
  void Run(absl::Span<const ForwardSequence> batch, const PagedKv& kv, std::vector<float>* logits,
           ForwardCounters* counters = nullptr);

  const FoxConfig& config() const { return config_; }
  // ACP's per-head U of a layer with QK-norm ([num_heads]); empty without.
  const std::vector<float>& StaticU(int layer) const { return u_static_[layer]; }

 private:
  void RunLayer(int layer, absl::Span<const ForwardSequence> batch, const PagedKv& kv,
                ForwardCounters* counters);
  void ShiftAndState(int layer, absl::Span<const ForwardSequence> batch);

  const FoxConfig config_;
  const FoxWeights& weights_;
  const ForwardOptions options_;
  std::vector<std::vector<float>> u_static_;  // [layers][num_heads] with QK-norm

  // Scratch, sized per call. R = rows (new tokens in the batch).
  std::vector<float> x_, a_;                 // [R, H] residual stream, normed input
  std::vector<float> q_, k_raw_, v_raw_;     // [R, H]
  std::vector<float> k_, v_;                 // [R, H] after the shift
  std::vector<float> alpha_k_, alpha_v_;     // [R, nH]
  std::vector<float> log_f_;                 // [R, nH]
  std::vector<double> query_l_;              // [R, nH]
  std::vector<float> key_norm_max_;          // [R, nH]
  std::vector<float> gate_, attn_, proj_;    // [R, H]
  std::vector<float> gate_up_, act_;         // [R, 2I], [R, I]
  std::vector<cpu::AttentionQueries> queries_;
};

}  // namespace fox
