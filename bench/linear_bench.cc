// The streaming (decode) matmul kernel's read bandwidth on FoX-sized weights,
// float32 and bfloat16, next to the machine's measured read bandwidth.
//   linear_bench [--benchmark_filter=...]
#include <random>
#include <vector>

#include "bench/machine_ceilings.h"
#include "benchmark/benchmark.h"
#include "kernels/cpu/linear.h"

namespace fox {
namespace {

void BM_LinearStreaming(benchmark::State& state) {
  const int64_t T = state.range(0), N = state.range(1), K = state.range(2);
  const DType dtype = state.range(3) ? DType::kBF16 : DType::kF32;
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  std::vector<float> w32(N * K), x(T * K), y(T * N);
  for (float& v : w32) v = normal(rng);
  for (float& v : x) v = normal(rng);
  std::vector<uint16_t> w16(N * K);
  ConvertFromF32(w32.data(), N * K, DType::kBF16, w16.data());
  const void* w = dtype == DType::kF32 ? static_cast<const void*>(w32.data()) : w16.data();
  for (auto _ : state) {
    cpu::LinearStreaming(x.data(), T, K, w, dtype, N, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * N * K * DTypeSize(dtype));
}

// Shapes of the 125m model (q/k/v/o, gate_up, down, lm_head) and of 760m's gate_up.
BENCHMARK(BM_LinearStreaming)
    ->ArgNames({"T", "N", "K", "bf16"})
    ->ArgsProduct({{1}, {768}, {768}, {0, 1}})
    ->ArgsProduct({{1, 4}, {3584}, {768}, {0, 1}})
    ->ArgsProduct({{1}, {768}, {1792}, {0, 1}})
    ->ArgsProduct({{1}, {50257}, {768}, {0, 1}})
    ->ArgsProduct({{1}, {7168}, {1536}, {0, 1}})
    ->UseRealTime();

}  // namespace
}  // namespace fox

int main(int argc, char** argv) {
  fox::PrintMachineCeilings(fox::MeasureMachineCeilings());
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
