#include "bench/machine_ceilings.h"

#include <cblas.h>
#include <immintrin.h>
#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <random>
#include <vector>

namespace fox {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int64_t kAlign = int64_t{1} << 21;  // 2 MiB: lets the kernel back arrays with huge pages

// The results of the read sweeps land here so that the loads cannot be elided.
volatile float read_sink = 0.0f;

// A float array aligned for vector and non-temporal access, first touched by
// the threads that will sweep it (same static split), so pages are local.
class BigArray {
 public:
  explicit BigArray(int64_t bytes) : n_(std::max(bytes / kAlign, int64_t{1}) * kAlign / 4) {
    data_ = static_cast<float*>(std::aligned_alloc(kAlign, n_ * 4));
    madvise(data_, n_ * 4, MADV_HUGEPAGE);  // advice only; failure is harmless
    float* d = data_;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n_; ++i) d[i] = static_cast<float>(i & 1023) * 0.001f;
  }
  ~BigArray() { std::free(data_); }
  BigArray(const BigArray&) = delete;
  BigArray& operator=(const BigArray&) = delete;

  float* data() { return data_; }
  int64_t size() const { return n_; }

 private:
  int64_t n_;
  float* data_;
};

// This thread's share [begin, end) of n elements, in whole 64-byte lines.
void ThreadRange(int64_t n, int64_t* begin, int64_t* end) {
  const int64_t lines = n / 16;
  const int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
  *begin = lines * t / threads * 16;
  *end = lines * (t + 1) / threads * 16;
}

float SumRange(const float* p, int64_t n) {
  int64_t i = 0;
  float total = 0.0f;
#if defined(__AVX512F__)
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (; i + 64 <= n; i += 64) {
    a0 = _mm512_add_ps(a0, _mm512_load_ps(p + i));
    a1 = _mm512_add_ps(a1, _mm512_load_ps(p + i + 16));
    a2 = _mm512_add_ps(a2, _mm512_load_ps(p + i + 32));
    a3 = _mm512_add_ps(a3, _mm512_load_ps(p + i + 48));
  }
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
  for (float x : lanes) total += x;
#elif defined(__AVX2__)
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_load_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_load_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_load_ps(p + i + 24));
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  for (float x : lanes) total += x;
#endif
  for (; i < n; ++i) total += p[i];
  return total;
}

void CopyRange(const float* src, float* dst, int64_t n) {
  int64_t i = 0;
#if defined(__AVX512F__)
  for (; i + 64 <= n; i += 64) {
    _mm512_stream_ps(dst + i, _mm512_load_ps(src + i));
    _mm512_stream_ps(dst + i + 16, _mm512_load_ps(src + i + 16));
    _mm512_stream_ps(dst + i + 32, _mm512_load_ps(src + i + 32));
    _mm512_stream_ps(dst + i + 48, _mm512_load_ps(src + i + 48));
  }
  _mm_sfence();
#elif defined(__AVX2__)
  for (; i + 32 <= n; i += 32) {
    _mm256_stream_ps(dst + i, _mm256_load_ps(src + i));
    _mm256_stream_ps(dst + i + 8, _mm256_load_ps(src + i + 8));
    _mm256_stream_ps(dst + i + 16, _mm256_load_ps(src + i + 16));
    _mm256_stream_ps(dst + i + 24, _mm256_load_ps(src + i + 24));
  }
  _mm_sfence();
#endif
  for (; i < n; ++i) dst[i] = src[i];
}

// Seconds of the fastest of `reps` runs of fn, after one untimed warm-up.
template <typename Fn>
double BestSeconds(int reps, Fn fn) {
  fn();
  double best = 1e300;
  for (int r = 0; r < reps; ++r) {
    const Clock::time_point start = Clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - start).count());
  }
  return best;
}

double MeasureReadGbps(BigArray& a, int reps) {
  const float* p = a.data();
  const int64_t n = a.size();
  const double seconds = BestSeconds(reps, [&] {
    float total = 0.0f;
#pragma omp parallel reduction(+ : total)
    {
      int64_t begin, end;
      ThreadRange(n, &begin, &end);
      total += SumRange(p + begin, end - begin);
    }
    read_sink = read_sink + total;
  });
  return static_cast<double>(n) * 4 / seconds / 1e9;
}

double MeasureCopyGbps(BigArray& src, BigArray& dst, int reps) {
  const float* s = src.data();
  float* d = dst.data();
  const int64_t n = std::min(src.size(), dst.size());
  const double seconds = BestSeconds(reps, [&] {
#pragma omp parallel
    {
      int64_t begin, end;
      ThreadRange(n, &begin, &end);
      CopyRange(s + begin, d + begin, end - begin);
    }
  });
  return 2.0 * static_cast<double>(n) * 4 / seconds / 1e9;
}

double MeasureSgemmGflops(int n, int reps) {
  std::vector<float> a(int64_t{n} * n), b(a.size()), c(a.size());
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (float& x : a) x = uniform(rng);
  for (float& x : b) x = uniform(rng);
  const double seconds = BestSeconds(reps, [&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(), n,
                0.0f, c.data(), n);
  });
  const double nd = n;
  return 2.0 * nd * nd * nd / seconds / 1e9;
}

}  // namespace

MachineCeilings MeasureMachineCeilings(const CeilingsOptions& options) {
  MachineCeilings result{};
  {
    BigArray src(options.array_bytes);
    result.read_gbps = MeasureReadGbps(src, options.repetitions);
    BigArray dst(options.array_bytes);
    result.copy_gbps = MeasureCopyGbps(src, dst, options.repetitions);
  }
  result.sgemm_gflops = MeasureSgemmGflops(options.gemm_n, options.repetitions);
  return result;
}

MachineCeilings MeasureMachineCeilings() { return MeasureMachineCeilings(CeilingsOptions{}); }

void PrintMachineCeilings(const MachineCeilings& ceilings, std::FILE* out) {
  std::fprintf(out, "threads:       %d (OpenMP pool, shared with OpenBLAS)\n",
               omp_get_max_threads());
  std::fprintf(out, "read:          %8.1f GB/s  (read-only sweep, vector loads)\n",
               ceilings.read_gbps);
  std::fprintf(out, "copy:          %8.1f GB/s  (read + written bytes, non-temporal stores)\n",
               ceilings.copy_gbps);
  std::fprintf(out, "sgemm:         %8.1f GFLOP/s  (OpenBLAS, square, 2 n^3 per call)\n",
               ceilings.sgemm_gflops);
}

}  // namespace fox
