// The engine's view of a backend: run one batch of the forward pass over the
// paged KV cache. The CPU executor wraps models/forward; the CUDA backend
// implements the same interface.
#pragma once

#include <vector>

#include "absl/types/span.h"
#include "kernels/paged_kv.h"
#include "models/forward.h"

namespace fox {

class Executor {
 public:
  virtual ~Executor() = default;

  // Runs `batch` (see CpuForward::Run): `logits` receives one row per
  // sequence, for its last new token.
  virtual void Execute(absl::Span<const ForwardSequence> batch, const PagedKv& kv,
                       std::vector<float>* logits, ForwardCounters* counters) = 0;
  // ACP's static U per layer ([layers][num_heads]), empty rows for a model
  // without QK-norm: what the evictor's thresholds come from.
  virtual std::vector<std::vector<float>> AcpStaticU() const = 0;
  virtual const FoxConfig& config() const = 0;
};

class CpuExecutor : public Executor {
 public:
  // `weights` must outlive the executor. `num_threads` > 0 fixes the
  // threads of the calling thread's OpenMP pool (the setting is per thread,
  // so it is applied where Execute runs); 0 leaves the default.
  CpuExecutor(const FoxConfig& config, const FoxWeights& weights, const ForwardOptions& options,
              int num_threads = 0)
      : forward_(config, weights, options), num_threads_(num_threads) {}

  void Execute(absl::Span<const ForwardSequence> batch, const PagedKv& kv,
               std::vector<float>* logits, ForwardCounters* counters) override;
  std::vector<std::vector<float>> AcpStaticU() const override;
  const FoxConfig& config() const override { return forward_.config(); }

 private:
  CpuForward forward_;
  const int num_threads_;
};

}  // namespace fox
