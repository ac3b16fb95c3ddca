// Reports whether a CUDA device answers; used by `--device auto`.
#include <cuda_runtime.h>

#include "kernels/cuda/device_info.h"

namespace fox {

int CudaDeviceCount() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error of a machine without a driver
    return 0;
  }
  return count;
}

}  // namespace fox
