// The machine's measured ceilings, printed next to each benchmark's rate: the
// memory bandwidth a bandwidth-bound kernel (decode) can reach, and the
// FLOP/s a compute-bound one (prefill) can reach, with the same thread pool.
#pragma once

#include <cstdint>
#include <cstdio>

namespace fox {

// GB are 1e9 bytes, GFLOP 1e9 floating-point operations; each figure is the
// best of several repetitions.
struct MachineCeilings {
  double read_gbps;     // read-only sweep over a large array (vector loads)
  double copy_gbps;     // copy between large arrays, bytes read plus bytes written;
                        // non-temporal stores, so no write-allocate reads hide
  double sgemm_gflops;  // BLAS sgemm on a large square problem, 2 n^3 per call
};

struct CeilingsOptions {
  int64_t array_bytes = int64_t{1} << 30;  // per array: read uses one, copy two
  int gemm_n = 2048;
  int repetitions = 5;
};

// Measures with every thread of the OpenMP pool (omp_get_max_threads(), so
// SetCpuNumThreads applies); the OpenMP build of OpenBLAS uses the same pool.
// Takes a few seconds and allocates 2 * array_bytes; not thread-safe.
MachineCeilings MeasureMachineCeilings(const CeilingsOptions& options);
MachineCeilings MeasureMachineCeilings();

// One line per figure, with the thread count and the method.
void PrintMachineCeilings(const MachineCeilings& ceilings, std::FILE* out = stdout);

}  // namespace fox
