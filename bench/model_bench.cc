// End-to-end CPU model benchmark: decode tokens/s at batch 1 and prefill
// tokens/s on a 512-token prompt for a FoX configuration (default 125m, Pro),
// in float32 and bfloat16 weights, each beside its ratio to this machine's
// roofline measured in the same run:
//   decode:  tokens/s / (read bandwidth / weight bytes read per token,
//            the embedding table excluded)
//   prefill: achieved FLOP/s / measured sgemm FLOP/s
//
// usage: model_bench [--config 125m] [--model-dir DIR] [--prompt 512] [--decode 64]
//                    [--threads N]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "bench/machine_ceilings.h"
#include "engine/block_pool.h"
#include "engine/sequence_blocks.h"
#include "kernels/cpu/threading.h"
#include "models/checkpoint.h"
#include "models/checkpoint_writer.h"
#include "models/forward.h"

namespace fox {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Bytes of weights a decode step reads: every matrix and vector except the
// embedding table (one row of it is read, which is negligible).
double DecodeWeightBytes(const FoxWeights& w) {
  auto bytes = [](const Tensor& t) {
    return t.empty() ? 0.0 : static_cast<double>(t.numel()) * DTypeSize(t.dtype);
  };
  double total = bytes(w.final_norm) + bytes(w.lm_head);
  for (const LayerWeights& l : w.layers) {
    for (const Tensor* t : {&l.attn_norm, &l.q_proj, &l.k_proj, &l.v_proj, &l.k_shift, &l.v_shift,
                            &l.fgate_w, &l.fgate_b, &l.q_norm, &l.k_norm, &l.ogate, &l.output_norm,
                            &l.o_proj, &l.mlp_norm, &l.gate_up, &l.down}) {
      total += bytes(*t);
    }
  }
  return total;
}

// FLOPs of a prefill of T tokens that computes logits for the last one only.
double PrefillFlops(const FoxConfig& c, int64_t T) {
  const double H = c.hidden_size, nH = c.num_heads, I = c.intermediate_size;
  double per_token = 2.0 * (3 * H * H + H * H /*o*/ + 2 * H * I + H * I);  // q,k,v,o, MLP
  if (c.use_output_gate) per_token += 2.0 * H * H;
  if (c.use_k_shift) per_token += 2.0 * nH * H;
  if (c.use_v_shift) per_token += 2.0 * nH * H;
  per_token += 2.0 * nH * H;  // forget gate
  const double linear = per_token * c.num_layers * T + 2.0 * c.vocab_size * H;
  // q.k and p.v over j <= i: 4 * H FLOPs per (i, j) pair and layer.
  const double attention = 4.0 * H * c.num_layers * (static_cast<double>(T) * (T + 1) / 2);
  return linear + attention;
}

struct Result {
  double decode_tps = 0, prefill_tps = 0, prefill_flops = 0;
};

Result Measure(const Checkpoint& model, int64_t prompt_len, int64_t decode_steps) {
  const FoxConfig& c = model.config;
  const int32_t tables = c.num_layers * c.num_heads;
  const int64_t total = prompt_len + decode_steps + 1;
  BlockPool pool(static_cast<int32_t>(tables * ((total + 15) / 16)), 16, c.head_dim, DType::kF32);
  ForwardOptions options;
  CpuForward forward(c, model.weights, options);
  std::mt19937_64 rng(1);
  std::vector<int32_t> prompt(prompt_len);
  for (int32_t& t : prompt) t = static_cast<int32_t>(rng() % c.vocab_size);
  std::vector<float> logits;
  Result r;
  double best_prefill = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    SequenceBlocks blocks(tables);
    blocks.Reserve(pool, total);
    SequenceState state = SequenceState::Empty(c);
    const auto t0 = Clock::now();
    ForwardSequence seq{prompt, &state, blocks.Views().data(), false};
    forward.Run({&seq, 1}, pool.view(), &logits);
    best_prefill = std::min(best_prefill, Seconds(t0, Clock::now()));
    if (rep == 2) {
      int32_t token = 0;
      const auto t1 = Clock::now();
      for (int64_t s = 0; s < decode_steps; ++s) {
        ForwardSequence step{{&token, 1}, &state, blocks.Views().data(), false};
        forward.Run({&step, 1}, pool.view(), &logits);
        token = static_cast<int32_t>(s % c.vocab_size);
      }
      r.decode_tps = decode_steps / Seconds(t1, Clock::now());
    }
    blocks.ReleaseAll(pool);
  }
  r.prefill_tps = prompt_len / best_prefill;
  r.prefill_flops = PrefillFlops(c, prompt_len) / best_prefill;
  return r;
}

int Main(int argc, char** argv) {
  std::string config_name = "125m", model_dir;
  int64_t prompt_len = 512, decode_steps = 64, threads = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--config") config_name = argv[i + 1];
    else if (flag == "--model-dir") model_dir = argv[i + 1];
    else if (flag == "--prompt") prompt_len = std::stoll(argv[i + 1]);
    else if (flag == "--decode") decode_steps = std::stoll(argv[i + 1]);
    else if (flag == "--threads") threads = std::stoll(argv[i + 1]);
    else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  SetCpuNumThreads(static_cast<int>(threads));
  std::printf("threads: %d\n", CpuNumThreads());
  const MachineCeilings ceilings = MeasureMachineCeilings();
  std::printf("machine: read %.1f GB/s, copy %.1f GB/s (read+write), sgemm %.1f GFLOP/s\n",
              ceilings.read_gbps, ceilings.copy_gbps, ceilings.sgemm_gflops);

  if (model_dir.empty()) model_dir = "/tmp/foxserve-bench-" + config_name;
  if (!std::filesystem::exists(model_dir + "/config.json")) {
    absl::StatusOr<FoxConfig> config = NamedFoxConfig(config_name, true);
    if (!config.ok()) {
      std::fprintf(stderr, "%s\n", std::string(config.status().message()).c_str());
      return 1;
    }
    RandomInitOptions init;
    init.seed = 1;
    std::printf("writing a random %s checkpoint to %s\n", config_name.c_str(), model_dir.c_str());
    absl::Status s = WriteFoxCheckpoint(model_dir, *config, RandomFoxTensors(*config, init), {});
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
      return 1;
    }
  }
  std::printf("\n%-9s %14s %10s %9s | %16s %12s %9s\n", "weights", "decode tok/s", "roofline",
              "ratio", "prefill tok/s", "GFLOP/s", "ratio");
  for (DType dtype : {DType::kF32, DType::kBF16}) {
    CheckpointOptions options;
    options.dtype = dtype;
    absl::StatusOr<Checkpoint> model = LoadCheckpoint(model_dir, options);
    if (!model.ok()) {
      std::fprintf(stderr, "%s\n", std::string(model.status().message()).c_str());
      return 1;
    }
    const double weight_bytes = DecodeWeightBytes(model->weights);
    const double roofline = ceilings.read_gbps * 1e9 / weight_bytes;
    const Result r = Measure(*model, prompt_len, decode_steps);
    std::printf("%-9s %14.1f %10.1f %9.2f | %16.1f %12.1f %9.2f\n", DTypeName(dtype), r.decode_tps,
                roofline, r.decode_tps / roofline, r.prefill_tps, r.prefill_flops / 1e9,
                r.prefill_flops / 1e9 / ceilings.sgemm_gflops);
    std::printf("          (%.1f MB of weights read per decode token; prefill of %lld tokens)\n",
                weight_bytes / 1e6, static_cast<long long>(prompt_len));
  }
  return 0;
}

}  // namespace
}  // namespace fox

int main(int argc, char** argv) { return fox::Main(argc, argv); }
