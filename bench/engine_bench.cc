// Engine benchmark on a 125m-shaped FoX-Pro whose heads are 70% forgetting
// (forget-gate bias --forget-bias, about 2.5: mean log f near -0.08, so a
// key decays past ACP's threshold within about 600 tokens) and 30% keeping
// (--keep-bias, about 8: mean log f near -3e-4, nothing decays within 32k).
// Random weights otherwise; bfloat16 weights, float32 KV, 16-token blocks.
//
//   kv          KV blocks one sequence holds at 1k, 4k, 16k and 32k tokens,
//               ACP on, beside what it would hold without eviction (every
//               block it allocated: --acp off never frees one)
//   decode      decode step time at 16k context, ACP off vs on (attention
//               alone and the whole step), and attention's read rate
//               and, from those footprints, how many 16k-token sequences
//               fixed KV budgets hold at once (with one prefill chunk of
//               headroom for admitting the next), ACP on vs off
//   capacity    (opt-in: about 7 minutes on 2 cores) the same
//               by a real run: sequences decoding at once before the first
//               preemption, ACP on vs off
//   throughput  engine tokens/s at 1, 8, 32 and 64 concurrent sequences, and
//               the scheduler and cache bookkeeping share of a step
//
// usage: engine_bench [--only kv,decode,throughput,capacity] [--threads N]
//                     [--forget-bias 2.5] [--keep-bias 8] [--model-dir DIR]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "bench/machine_ceilings.h"
#include "engine/acp_eviction.h"
#include "engine/engine_core.h"
#include "kernels/cpu/threading.h"
#include "models/checkpoint.h"
#include "models/checkpoint_writer.h"
#include "models/forward.h"

namespace fox {
namespace {

constexpr int64_t kMaxModelLen = 32768 + 64;  // L_max of every run (ACP's delta_fix)
constexpr int32_t kBlockSize = 16;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

void Die(const absl::Status& s) {
  std::fprintf(stderr, "engine_bench: %s\n", std::string(s.message()).c_str());
  std::exit(1);
}

struct Flags {
  std::vector<std::string> only = {"kv", "decode", "throughput"};
  int threads = 0;
  double forget_bias = 2.5;
  double keep_bias = 8.0;
  std::string model_dir;
  bool Runs(const std::string& what) const {
    return std::find(only.begin(), only.end(), what) != only.end();
  }
};

int NumForgetHeads(const FoxConfig& c) { return static_cast<int>(std::lround(0.7 * c.num_heads)); }

Checkpoint MakeModel(const Flags& flags) {
  absl::StatusOr<FoxConfig> config = NamedFoxConfig("125m", true);
  if (!config.ok()) Die(config.status());
  char name[128];
  std::snprintf(name, sizeof(name), "/tmp/foxserve-bench-125m-acp-%.2f-%.2f", flags.forget_bias,
                flags.keep_bias);
  const std::string dir = flags.model_dir.empty() ? name : flags.model_dir;
  if (!std::filesystem::exists(dir + "/config.json")) {
    RandomInitOptions init;
    init.seed = 1;
    for (int h = 0; h < config->num_heads; ++h) {
      init.fgate_bias.push_back(
          static_cast<float>(h < NumForgetHeads(*config) ? flags.forget_bias : flags.keep_bias));
    }
    WriteOptions write;
    write.dtype = DType::kBF16;
    std::printf("writing the benchmark checkpoint to %s\n", dir.c_str());
    if (absl::Status s = WriteFoxCheckpoint(dir, *config, RandomFoxTensors(*config, init), write);
        !s.ok()) {
      Die(s);
    }
  }
  absl::StatusOr<Checkpoint> model = LoadCheckpoint(dir);
  if (!model.ok()) Die(model.status());
  return std::move(*model);
}

std::vector<int32_t> RandomPrompt(int64_t n, int32_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> ids(n);
  for (int32_t& id : ids) id = static_cast<int32_t>(rng() % vocab);
  return ids;
}

int64_t FullBlocks(const FoxConfig& c, int64_t tokens) {
  return int64_t{c.num_layers} * c.num_heads * ((tokens + kBlockSize - 1) / kBlockSize);
}

EngineConfig BaseConfig(int64_t num_blocks) {
  EngineConfig config;
  config.num_kv_blocks = num_blocks;
  config.block_size = kBlockSize;
  config.max_model_len = kMaxModelLen;
  return config;
}

// An engine whose eviction follows `evict` and whose attention always skips
// (the block counts do not depend on skipping; skipping only saves time).
std::unique_ptr<EngineCore> MakeEngine(const Checkpoint& model, EngineConfig config, bool evict) {
  config.acp = evict;
  ForwardOptions options;
  options.acp = true;
  absl::StatusOr<std::unique_ptr<EngineCore>> core = EngineCore::Create(
      std::make_unique<CpuExecutor>(model.config, model.weights, options), nullptr, config);
  if (!core.ok()) Die(core.status());
  return std::move(*core);
}

EngineRequest MakeRequest(const std::string& id, std::vector<int32_t> prompt, int64_t max_tokens) {
  EngineRequest r;
  r.id = id;
  r.prompt_ids = std::move(prompt);
  r.params.temperature = 0.0f;
  r.params.max_tokens = max_tokens;
  r.params.ignore_eos = true;
  return r;
}

// --- kv ---------------------------------------------------------------------

void RunKv(const Checkpoint& model) {
  const FoxConfig& c = model.config;
  const int64_t context = 32768;
  std::unique_ptr<EngineCore> core =
      MakeEngine(model, [&] {
        EngineConfig config = BaseConfig(FullBlocks(c, context + 64));
        config.max_num_batched_tokens = 1024;
        return config;
      }(), /*evict=*/true);
  if (absl::Status s = core->AddRequest(
          MakeRequest("kv", RandomPrompt(context, c.vocab_size, 7), 2),
          std::make_shared<RequestStream>("kv"));
      !s.ok()) {
    Die(s);
  }
  const int forget_heads = NumForgetHeads(c);
  std::printf("\n### KV blocks held by one sequence (ACP on; off = every block it allocated)\n\n");
  std::printf("| tokens | blocks, ACP off | blocks, ACP on | off / on | on: per forgetting head "
              "| on: per keeping head |\n|---|---|---|---|---|---|\n");
  const Clock::time_point start = Clock::now();
  for (int64_t mark : {1024, 4096, 16384, 32768}) {
    const Request* r = core->Find("kv");
    while (r->num_computed_tokens < mark) {
      core->Step();
      r = core->Find("kv");
    }
    int64_t forget_live = 0, keep_live = 0;
    for (int32_t t = 0; t < r->blocks.num_tables(); ++t) {
      const int64_t live = r->blocks.end_block(t) - r->blocks.first_live_block(t);
      (t % c.num_heads < forget_heads ? forget_live : keep_live) += live;
    }
    const EngineStats stats = core->Stats();
    const int64_t forget_tables = int64_t{c.num_layers} * forget_heads;
    const int64_t keep_tables = int64_t{c.num_layers} * (c.num_heads - forget_heads);
    std::printf("| %lld | %lld | %lld | %.2f | %.1f | %.1f |\n", static_cast<long long>(mark),
                static_cast<long long>(stats.kv_blocks_full),
                static_cast<long long>(stats.kv_blocks_live),
                static_cast<double>(stats.kv_blocks_full) / stats.kv_blocks_live,
                static_cast<double>(forget_live) / forget_tables,
                static_cast<double>(keep_live) / keep_tables);
    std::fflush(stdout);
    if (mark == 16384) {
      // Capacity from the footprints: sequences of 16k tokens that fit a
      // budget while one more prefill chunk (2048 tokens in every table)
      // can still be admitted.
      const int64_t chunk = FullBlocks(c, 2048);
      std::printf("\n16k-token sequences held at once, from these footprints (budget minus one "
                  "2048-token prefill chunk, %lld blocks, divided by the footprint):\n\n"
                  "| KV budget (float32) | blocks | ACP off | ACP on | on / off |\n"
                  "|---|---|---|---|---|\n",
                  static_cast<long long>(chunk));
      const double block_bytes = 2.0 * kBlockSize * c.head_dim * 4 + 4.0 * kBlockSize + 8;
      for (double gib : {4.0, 16.0, 64.0}) {
        const int64_t budget = static_cast<int64_t>(gib * (1 << 30) / block_bytes);
        const int64_t off = (budget - chunk) / stats.kv_blocks_full;
        const int64_t on = (budget - chunk) / stats.kv_blocks_live;
        std::printf("| %.0f GiB | %lld | %lld | %lld | %.2f |\n", gib,
                    static_cast<long long>(budget), static_cast<long long>(off),
                    static_cast<long long>(on), static_cast<double>(on) / std::max<int64_t>(off, 1));
      }
      std::printf("\n| tokens | blocks, ACP off | blocks, ACP on | off / on | on: per forgetting "
                  "head | on: per keeping head |\n|---|---|---|---|---|---|\n");
    }
    if (mark == 32768) {
      double forget_l = 0, keep_l = 0;
      for (int32_t t = 0; t < r->blocks.num_tables(); ++t) {
        (t % c.num_heads < forget_heads ? forget_l : keep_l) += r->state.last_l[t];
      }
      std::printf("\nmean log f per token: forgetting heads %.4f, keeping heads %.6f; "
                  "delta_fix of layer 0 head 0: %.1f; %.0f s for the 32k prefill\n",
                  forget_l / (c.num_layers * forget_heads) / mark,
                  keep_l / (c.num_layers * (c.num_heads - forget_heads)) / mark,
                  core->evictor().delta_fix(0, 0), Seconds(start, Clock::now()));
    }
  }
}

// --- decode -----------------------------------------------------------------

struct DecodeTiming {
  double step_ms = 0, attention_ms = 0;
  int64_t key_blocks_read = 0;
};

DecodeTiming TimeDecode(CpuForward& forward, const PagedKv& kv, SequenceBlocks& blocks,
                        SequenceState state, int steps) {
  std::vector<float> logits;
  std::vector<double> step_ms, attention_ms;
  DecodeTiming t;
  int32_t token = 11;
  for (int s = 0; s < steps; ++s) {
    ForwardCounters counters;
    ForwardSequence seq{{&token, 1}, &state, blocks.Views().data(), false};
    const Clock::time_point t0 = Clock::now();
    forward.Run({&seq, 1}, kv, &logits, &counters);
    step_ms.push_back(1e3 * Seconds(t0, Clock::now()));
    attention_ms.push_back(1e3 * counters.attention_seconds);
    t.key_blocks_read = counters.key_blocks_read;
    token = static_cast<int32_t>((token * 31 + 7) % forward.config().vocab_size);
  }
  std::sort(step_ms.begin(), step_ms.end());
  std::sort(attention_ms.begin(), attention_ms.end());
  t.step_ms = step_ms[steps / 2];
  t.attention_ms = attention_ms[steps / 2];
  return t;
}

void RunDecode(const Checkpoint& model, double read_gbps) {
  const FoxConfig& c = model.config;
  const int64_t context = 16384;
  const int steps = 9;
  const int32_t tables = c.num_layers * c.num_heads;
  BlockPool pool(static_cast<int32_t>(FullBlocks(c, context + steps + 1)), kBlockSize, c.head_dim,
                 DType::kF32);
  SequenceBlocks blocks(tables);
  if (!blocks.Reserve(pool, context + steps)) Die(absl::InternalError("decode pool too small"));
  ForwardOptions on_options, off_options;
  off_options.acp = false;
  CpuForward on(c, model.weights, on_options), off(c, model.weights, off_options);

  // The context, computed once with skipping and kept whole (no eviction).
  SequenceState state = SequenceState::Empty(c);
  const std::vector<int32_t> prompt = RandomPrompt(context, c.vocab_size, 9);
  std::vector<float> logits;
  const Clock::time_point start = Clock::now();
  for (int64_t begin = 0; begin < context; begin += 2048) {
    ForwardSequence seq{absl::MakeConstSpan(prompt).subspan(begin, 2048), &state,
                        blocks.Views().data(), false};
    on.Run({&seq, 1}, pool.view(), &logits);
  }
  std::printf("\n(16k context prefilled in %.0f s)\n", Seconds(start, Clock::now()));

  const DecodeTiming t_off = TimeDecode(off, pool.view(), blocks, state, steps);
  const AcpEvictor evictor = AcpEvictor::ForModel(on, kMaxModelLen, -10.0);
  const int64_t evicted = evictor.Evict(state, blocks, pool);
  const DecodeTiming t_on = TimeDecode(on, pool.view(), blocks, state, steps);

  const double block_bytes = 2.0 * kBlockSize * c.head_dim * 4 + 4.0 * kBlockSize + 8;
  auto gbps = [&](const DecodeTiming& t) {
    return t.key_blocks_read * block_bytes / (t.attention_ms * 1e-3) / 1e9;
  };
  std::printf("\n### Decode step at 16k context, batch 1 (median of %d steps)\n\n", steps);
  std::printf("| ACP | key blocks read | attention ms | attention GB/s | / read bandwidth | "
              "step ms |\n|---|---|---|---|---|---|\n");
  for (const auto& [name, t] : {std::pair{"off", t_off}, std::pair{"on", t_on}}) {
    std::printf("| %s | %lld | %.2f | %.1f | %.2f | %.2f |\n", name,
                static_cast<long long>(t.key_blocks_read), t.attention_ms, gbps(t),
                gbps(t) / read_gbps, t.step_ms);
  }
  std::printf("\nattention off / on: **%.2fx**; whole step off / on: %.2fx; %lld blocks evicted "
              "before the ACP-on steps\n",
              t_off.attention_ms / t_on.attention_ms, t_off.step_ms / t_on.step_ms,
              static_cast<long long>(evicted));
  blocks.ReleaseAll(pool);
}

// --- capacity ---------------------------------------------------------------

// Sequences decoding at once when the first preemption comes (or at the end).
struct Capacity {
  int64_t sequences = 0;
  bool preempted = false;
  double seconds = 0;
};

Capacity MeasureCapacity(const Checkpoint& model, int64_t budget_blocks, bool acp,
                         int64_t offered) {
  const FoxConfig& c = model.config;
  EngineConfig config = BaseConfig(budget_blocks);
  config.max_num_seqs = static_cast<int32_t>(offered);
  std::unique_ptr<EngineCore> core = MakeEngine(model, config, acp);
  for (int64_t i = 0; i < offered; ++i) {
    const std::string id = "cap-" + std::to_string(i);
    if (absl::Status s = core->AddRequest(
            MakeRequest(id, RandomPrompt(16384, c.vocab_size, 100 + i), 64),
            std::make_shared<RequestStream>(id));
        !s.ok()) {
      Die(s);
    }
  }
  Capacity cap;
  const Clock::time_point start = Clock::now();
  while (core->has_work()) {
    const StepResult step = core->Step();
    if (step.num_preempted > 0) {
      cap.preempted = true;
      break;
    }
    int64_t decoding = 0;
    for (const Request* r : core->scheduler().running()) {
      decoding += r->num_computed_tokens >= r->num_prompt_tokens;
    }
    cap.sequences = std::max(cap.sequences, decoding);
  }
  cap.seconds = Seconds(start, Clock::now());
  core->AbortAll();
  return cap;
}

void RunCapacity(const Checkpoint& model) {
  const FoxConfig& c = model.config;
  // 1.25 sequences' worth of blocks without eviction.
  const int64_t budget = FullBlocks(c, 16384 + 64) * 5 / 4;
  const double gib = budget * (2.0 * kBlockSize * c.head_dim * 4 + 4.0 * kBlockSize + 8) /
                     (1024.0 * 1024 * 1024);
  const Capacity off = MeasureCapacity(model, budget, /*acp=*/false, 3);
  const Capacity on = MeasureCapacity(model, budget, /*acp=*/true, 8);
  std::printf("\n### 16k-token sequences held at once by one KV budget (%lld blocks, %.2f GiB "
              "float32)\n\n| ACP | sequences decoding before the first preemption | run |\n"
              "|---|---|---|\n",
              static_cast<long long>(budget), gib);
  for (const auto& [name, cap] : {std::pair{"off", off}, std::pair{"on", on}}) {
    std::printf("| %s | %lld%s | %.0f s |\n", name, static_cast<long long>(cap.sequences),
                cap.preempted ? "" : " (all offered; no preemption)", cap.seconds);
  }
  std::printf("\non / off: **%.2fx**\n",
              static_cast<double>(on.sequences) / std::max<int64_t>(off.sequences, 1));
}

// --- throughput -------------------------------------------------------------

void RunThroughput(const Checkpoint& model) {
  const FoxConfig& c = model.config;
  const int64_t prompt_len = 256, max_tokens = 128;
  std::printf("\n### Engine throughput (prompts of %lld random tokens, %lld greedy tokens each, "
              "all submitted at once)\n\n",
              static_cast<long long>(prompt_len), static_cast<long long>(max_tokens));
  std::printf("| sequences | wall s | output tok/s | total tok/s | steps | step ms | bookkeeping "
              "/ step | sampling / step |\n|---|---|---|---|---|---|---|---|\n");
  for (int64_t n : {1, 8, 32, 64}) {
    EngineConfig config = BaseConfig(FullBlocks(c, prompt_len + max_tokens) * n + 1024);
    config.max_num_seqs = static_cast<int32_t>(n);
    std::unique_ptr<EngineCore> core = MakeEngine(model, config, /*evict=*/true);
    for (int64_t i = 0; i < n; ++i) {
      const std::string id = "tp-" + std::to_string(i);
      if (absl::Status s = core->AddRequest(
              MakeRequest(id, RandomPrompt(prompt_len, c.vocab_size, 1000 + i), max_tokens),
              std::make_shared<RequestStream>(id));
          !s.ok()) {
        Die(s);
      }
    }
    const Clock::time_point start = Clock::now();
    while (core->has_work()) core->Step();
    const double wall = Seconds(start, Clock::now());
    const EngineCounters& k = core->Stats().counters;
    const double step_total =
        k.schedule_seconds + k.prepare_seconds + k.execute_seconds + k.sample_seconds +
        k.evict_seconds;
    const double bookkeeping = k.schedule_seconds + k.prepare_seconds + k.evict_seconds;
    std::printf("| %lld | %.2f | %.1f | %.1f | %lld | %.2f | %.3f%% | %.3f%% |\n",
                static_cast<long long>(n), wall, k.generation_tokens / wall,
                (k.generation_tokens + n * prompt_len) / wall, static_cast<long long>(k.steps),
                1e3 * step_total / k.steps, 100 * bookkeeping / step_total,
                100 * k.sample_seconds / step_total);
    std::fflush(stdout);
  }
  std::printf("\nbookkeeping = scheduling (block allocation included) + building the batch and "
              "its block tables + ACP eviction\n");
}

int Main(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--only") flags.only = absl::StrSplit(value, ',');
    else if (flag == "--threads") flags.threads = std::stoi(value);
    else if (flag == "--forget-bias") flags.forget_bias = std::stod(value);
    else if (flag == "--keep-bias") flags.keep_bias = std::stod(value);
    else if (flag == "--model-dir") flags.model_dir = value;
    else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  SetCpuNumThreads(flags.threads);
  std::printf("threads: %d\n", CpuNumThreads());
  const MachineCeilings ceilings = MeasureMachineCeilings();
  std::printf("machine: read %.1f GB/s, copy %.1f GB/s (read+write), sgemm %.1f GFLOP/s\n",
              ceilings.read_gbps, ceilings.copy_gbps, ceilings.sgemm_gflops);
  const Checkpoint model = MakeModel(flags);
  std::printf("model: 125m FoX-Pro, bfloat16 weights, %d of %d heads per layer with forget-gate "
              "bias %.2f, the rest %.2f; float32 KV, blocks of %d tokens, L_max %lld\n",
              NumForgetHeads(model.config), model.config.num_heads, flags.forget_bias,
              flags.keep_bias, kBlockSize, static_cast<long long>(kMaxModelLen));
  std::fflush(stdout);
  if (flags.Runs("kv")) RunKv(model);
  if (flags.Runs("decode")) RunDecode(model, ceilings.read_gbps);
  if (flags.Runs("throughput")) RunThroughput(model);
  if (flags.Runs("capacity")) RunCapacity(model);
  return 0;
}

}  // namespace
}  // namespace fox

int main(int argc, char** argv) { return fox::Main(argc, argv); }
