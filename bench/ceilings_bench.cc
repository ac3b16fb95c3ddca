// Prints this machine's ceilings (read and copy bandwidth, sgemm FLOP/s) as
// the other benchmarks measure them.
//
// usage: ceilings_bench [--threads N] [--array-mib 1024] [--gemm-n 2048] [--reps 5]
#include <cstdio>
#include <string>

#include "bench/machine_ceilings.h"
#include "kernels/cpu/threading.h"

int main(int argc, char** argv) {
  fox::CeilingsOptions options;
  int threads = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const long long value = std::stoll(argv[i + 1]);
    if (flag == "--threads") {
      threads = static_cast<int>(value);
    } else if (flag == "--array-mib") {
      options.array_bytes = value << 20;
    } else if (flag == "--gemm-n") {
      options.gemm_n = static_cast<int>(value);
    } else if (flag == "--reps") {
      options.repetitions = static_cast<int>(value);
    } else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  if (argc % 2 == 0) {
    std::fprintf(stderr, "flag %s needs a value\n", argv[argc - 1]);
    return 2;
  }
  fox::SetCpuNumThreads(threads);
  std::printf("arrays: %lld MiB, sgemm n = %d, best of %d\n",
              static_cast<long long>(options.array_bytes >> 20), options.gemm_n,
              options.repetitions);
  fox::PrintMachineCeilings(fox::MeasureMachineCeilings(options));
  return 0;
}
