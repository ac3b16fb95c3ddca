// CUDA device discovery. Safe to call on machines without a GPU or driver.
#pragma once

namespace fox {

// Number of CUDA devices that answer; 0 without a driver or GPU.
int CudaDeviceCount();

}  // namespace fox
