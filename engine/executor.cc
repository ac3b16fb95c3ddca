#include "engine/executor.h"

#include "kernels/cpu/threading.h"

namespace fox {

void CpuExecutor::Execute(absl::Span<const ForwardSequence> batch, const PagedKv& kv,
                          std::vector<float>* logits, ForwardCounters* counters) {
  if (num_threads_ > 0 && CpuNumThreads() != num_threads_) SetCpuNumThreads(num_threads_);
  forward_.Run(batch, kv, logits, counters);
}

std::vector<std::vector<float>> CpuExecutor::AcpStaticU() const {
  std::vector<std::vector<float>> u(forward_.config().num_layers);
  for (int layer = 0; layer < forward_.config().num_layers; ++layer) u[layer] = forward_.StaticU(layer);
  return u;
}

}  // namespace fox
