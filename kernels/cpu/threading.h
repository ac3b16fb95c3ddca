// Thread count of the CPU backend. Kernels and the BLAS share one OpenMP pool
// (OpenBLAS is linked in its OpenMP build), so one setting governs both.
#pragma once

namespace fox {

int CpuNumThreads();
// n <= 0 restores the default (OMP_NUM_THREADS or the number of cores).
void SetCpuNumThreads(int n);

}  // namespace fox
