// The CUDA paged decode attention (split-K partials + merge) against the CPU
// attention on random inputs: tables through the block-table mirror, work
// from the host plan, f32 and bf16 KV, ACP skipping off and on (static and
// data-dependent U). Needs a GPU: every test skips, loudly, where no CUDA
// device answers. ctest label: gpu.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/cpu/forget_attention.h"
#include "kernels/cuda/block_table_mirror.h"
#include "kernels/cuda/decode_plan.h"
#include "kernels/cuda/device_info.h"
#include "kernels/cuda/paged_decode_attention.h"
#include "kernels/dtype.h"
#include "kernels/paged_kv.h"

namespace fox::cuda {
namespace {

#define ASSERT_CUDA(call)                                       \
  do {                                                          \
    const cudaError_t error = (call);                           \
    ASSERT_EQ(error, cudaSuccess) << cudaGetErrorString(error); \
  } while (false)

// A device copy of a host vector, freed with the test.
class DeviceBuffers {
 public:
  ~DeviceBuffers() {
    for (void* p : owned_) cudaFree(p);
  }
  template <typename T>
  T* Upload(const std::vector<T>& host) {
    void* p = nullptr;
    const size_t bytes = std::max<size_t>(1, host.size() * sizeof(T));
    if (cudaMalloc(&p, bytes) != cudaSuccess) return nullptr;
    owned_.push_back(p);
    cudaMemcpy(p, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice);
    return static_cast<T*>(p);
  }

 private:
  std::vector<void*> owned_;
};

class PagedDecodeAttentionGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (CudaDeviceCount() == 0) {
      std::fprintf(stderr, "SKIPPED: no CUDA device answers; the CUDA decode kernel was not run\n");
      GTEST_SKIP() << "no CUDA device answers (cudaGetDeviceCount failed or returned 0)";
    }
  }

  // num_seqs sequences of random lengths, per head an evicted prefix, a
  // forget rate and L far below zero; compares GPU and CPU outputs.
  void Run(DType kv_dtype, bool acp_on, bool u_from_data, uint64_t seed) {
    const int32_t num_seqs = 7, num_heads = 4, d = 64, bs = 16, num_layers = 2, layer = 1;
    const int32_t num_tables = num_layers * num_heads;
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<int64_t> pos(num_seqs);
    for (int64_t& p : pos) p = std::uniform_int_distribution<int64_t>(1, 900)(rng);
    int32_t num_blocks = 0;
    for (int64_t p : pos) num_blocks += num_tables * static_cast<int32_t>(p / bs + 1);
    PagedKv kv;
    kv.block_size = bs;
    kv.head_dim = d;
    kv.kv_dtype = kv_dtype;
    kv.num_blocks = num_blocks;
    std::vector<uint8_t> k(num_blocks * kv.BlockElems() * DTypeSize(kv_dtype)), v(k.size());
    std::vector<double> anchor(num_blocks);
    std::vector<float> offset(int64_t{num_blocks} * bs);
    kv.k = k.data(), kv.v = v.data(), kv.l_anchor = anchor.data(), kv.l_offset = offset.data();
    std::vector<int32_t> ids(num_blocks);
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), rng);

    std::vector<std::vector<int32_t>> live(num_seqs * num_tables);
    std::vector<HeadBlockTable> tables(num_seqs * num_tables);
    std::vector<double> query_l(num_seqs * num_heads);
    std::vector<float> key_norm_max(num_seqs * num_heads, 0.0f);
    std::vector<float> q(int64_t{num_seqs} * num_heads * d);
    for (float& x : q) x = normal(rng);
    int32_t next = 0;
    std::vector<float> key(d), value(d);
    for (int32_t s = 0; s < num_seqs; ++s) {
      const int32_t last = static_cast<int32_t>(pos[s] / bs);
      for (int32_t t = 0; t < num_tables; ++t) {
        const int32_t r = s * num_tables + t;
        const int32_t first = std::uniform_int_distribution<int32_t>(0, last / 2)(rng);
        for (int32_t b = first; b <= last; ++b) live[r].push_back(ids[next++]);
        tables[r] = {live[r].data(), first, last - first + 1};
        if (t / num_heads != layer) continue;  // only this layer's keys are read
        const int32_t h = t % num_heads;
        double l = -5000.0 * std::uniform_real_distribution<double>(0, 1)(rng);
        const double f = std::uniform_real_distribution<double>(0.01, 0.4)(rng);
        for (int64_t p = 0; p <= pos[s]; ++p) {
          l -= f * std::uniform_real_distribution<double>(0.5, 1.5)(rng);
          if (p / bs < first) continue;
          for (float& x : key) x = normal(rng) * 0.5f;
          for (float& x : value) x = normal(rng);
          WriteKvToken(kv, tables[r], p, key.data(), value.data(), l);
          float norm = 0.0f;
          for (float x : key) norm += x * x;
          float& m = key_norm_max[s * num_heads + h];
          m = std::max(m, std::sqrt(norm));
        }
        query_l[s * num_heads + h] = l;
      }
    }

    // CPU reference.
    std::vector<float> u(num_heads, 1.0f);
    cpu::AcpOptions acp;
    acp.enabled = acp_on;
    acp.u_static = u_from_data ? nullptr : u.data();
    std::vector<cpu::AttentionQueries> seqs(num_seqs);
    for (int32_t s = 0; s < num_seqs; ++s) {
      seqs[s] = {s,
                 1,
                 pos[s],
                 &tables[s * num_tables + layer * num_heads],
                 &query_l[s * num_heads],
                 &key_norm_max[s * num_heads]};
    }
    std::vector<float> want(q.size());
    cpu::AttentionCounters counters;
    cpu::ForgetAttention(kv, seqs.data(), num_seqs, num_heads, q.data(), acp, want.data(),
                         &counters);
    if (acp_on) {
      EXPECT_GT(counters.key_blocks_skipped, 0);  // the skip path is exercised
    }

    // Tables through the mirror (ids 100.. so slots differ from batch order).
    BlockTableMirror mirror(16, num_tables, 1 << 16);
    std::vector<SequenceTables> batch(num_seqs);
    for (int32_t s = 0; s < num_seqs; ++s) batch[s] = {100 + 3 * s, &tables[s * num_tables]};
    TableDelta delta;
    mirror.Update(batch.data(), num_seqs, &delta);
    std::vector<int32_t> row_of_seq(num_seqs);
    for (int32_t s = 0; s < num_seqs; ++s) {
      row_of_seq[s] = mirror.slot(100 + 3 * s) * num_tables + layer * num_heads;
    }
    // The plan over this layer's live ranges.
    std::vector<DecodeRange> ranges(num_seqs * num_heads);
    for (int32_t s = 0; s < num_seqs; ++s) {
      for (int32_t h = 0; h < num_heads; ++h) {
        const HeadBlockTable& t = tables[s * num_tables + layer * num_heads + h];
        ranges[s * num_heads + h] = {t.first_block, t.num_blocks};
      }
    }
    DecodePlanOptions options;
    options.target_items = 48;
    options.min_blocks_per_item = 2;
    DecodePlan plan = PlanDecode(ranges.data(), num_seqs, num_heads, options);
    ASSERT_GT(plan.num_items(), num_seqs * num_heads);  // ranges were split

    DeviceBuffers dev;
    PagedDecodeKv dkv;
    dkv.k = dev.Upload(k);
    dkv.v = dev.Upload(v);
    dkv.l_anchor = dev.Upload(anchor);
    dkv.l_offset = dev.Upload(offset);
    dkv.table_words = dev.Upload(mirror.words());
    dkv.meta_words = mirror.meta_words();
    dkv.block_size = bs;
    dkv.head_dim = d;
    dkv.bf16 = kv_dtype == DType::kBF16;
    PagedDecodeQueries dq;
    dq.q = dev.Upload(q);
    dq.row_of_seq = dev.Upload(row_of_seq);
    dq.pos = dev.Upload(pos);
    dq.query_l = dev.Upload(query_l);
    dq.num_seqs = num_seqs;
    dq.num_heads = num_heads;
    dq.acp = acp_on;
    dq.log_eps = acp.log_eps;
    dq.u_static = u_from_data ? nullptr : dev.Upload(u);
    dq.key_norm_max = dev.Upload(key_norm_max);
    PagedDecodeWork work;
    work.item_seq = dev.Upload(plan.item_seq);
    work.item_head = dev.Upload(plan.item_head);
    work.item_first_block = dev.Upload(plan.item_first_block);
    work.item_num_blocks = dev.Upload(plan.item_num_blocks);
    work.merge_indptr = dev.Upload(plan.merge_indptr);
    work.num_items = plan.num_items();
    // Poisoned outputs: every value must be written.
    const std::vector<float> nan_acc(int64_t{plan.num_items()} * d, NAN);
    const std::vector<float> nan_item(plan.num_items(), NAN), nan_out(q.size(), NAN);
    work.partial_acc = dev.Upload(nan_acc);
    work.partial_max = dev.Upload(nan_item);
    work.partial_sum = dev.Upload(nan_item);
    float* out = dev.Upload(nan_out);
    ASSERT_NE(out, nullptr);

    ASSERT_CUDA(LaunchPagedDecodePartials(dkv, dq, work, nullptr));
    ASSERT_CUDA(LaunchPagedDecodeMerge(work, num_seqs * num_heads, d, out, nullptr));
    ASSERT_CUDA(cudaDeviceSynchronize());
    std::vector<float> got(q.size());
    ASSERT_CUDA(cudaMemcpy(got.data(), out, got.size() * 4, cudaMemcpyDeviceToHost));
    double worst = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_TRUE(std::isfinite(got[i])) << i;
      worst = std::max(worst, static_cast<double>(std::abs(got[i] - want[i])));
    }
    EXPECT_LT(worst, 1e-5);
  }
};

TEST_F(PagedDecodeAttentionGpuTest, F32MatchesCpu) { Run(DType::kF32, false, false, 1); }
TEST_F(PagedDecodeAttentionGpuTest, F32WithAcpMatchesCpu) { Run(DType::kF32, true, false, 2); }
TEST_F(PagedDecodeAttentionGpuTest, F32WithDataUMatchesCpu) { Run(DType::kF32, true, true, 3); }
TEST_F(PagedDecodeAttentionGpuTest, Bf16WithAcpMatchesCpu) { Run(DType::kBF16, true, false, 4); }

}  // namespace
}  // namespace fox::cuda
