#include "kernels/cpu/threading.h"

#include <omp.h>

namespace fox {
namespace {
int default_threads = -1;
}  // namespace

int CpuNumThreads() { return omp_get_max_threads(); }

void SetCpuNumThreads(int n) {
  if (default_threads < 0) default_threads = omp_get_max_threads();
  omp_set_num_threads(n > 0 ? n : default_threads);
}

}  // namespace fox
