// The CPU forward pass against the double-precision reference: full prefill,
// chunked prefill in several splits, token-by-token decode and mixed batches
// agree on every logit row; L stays precise at long context; ACP skipping
// changes logprobs by less than 1e-3.
#include "models/forward.h"

#include <cmath>
#include <numeric>
#include <optional>
#include <random>

#include "gtest/gtest.h"
#include "models/checkpoint.h"
#include "models/checkpoint_writer.h"
#include "tests/support/reference_model.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_kv.h"

namespace fox {
namespace {

using testing::ReferenceLogits;
using testing::RelativeError;

enum class Variant { kProShared, kProPerHead, kLlama, kGateNoNorm };

FoxConfig SmallConfig(Variant variant, int layers = 2, int heads = 4, int head_dim = 16) {
  FoxConfig c;
  c.vocab_size = 300;
  c.num_layers = layers;
  c.num_heads = heads;
  c.head_dim = head_dim;
  c.hidden_size = heads * head_dim;
  c.intermediate_size = 96;
  const bool pro = variant == Variant::kProShared || variant == Variant::kProPerHead;
  c.use_k_shift = c.use_v_shift = c.qk_norm = pro;
  c.qk_norm_shared = variant != Variant::kProPerHead;
  c.use_output_gate = pro || variant == Variant::kGateNoNorm;
  c.use_output_norm = pro;
  return c;
}

struct TestModel {
  testing::TempDir dir;
  Checkpoint checkpoint;
};

std::unique_ptr<TestModel> MakeModel(const FoxConfig& config, RandomInitOptions init,
                                     DType file_dtype = DType::kF32,
                                     std::optional<DType> serve_dtype = std::nullopt) {
  auto model = std::make_unique<TestModel>();
  init.std = 0.1f;  // large enough that every term of the model matters
  WriteOptions write;
  write.dtype = file_dtype;
  EXPECT_TRUE(WriteFoxCheckpoint(model->dir.path(), config, RandomFoxTensors(config, init), write).ok());
  CheckpointOptions load;
  load.dtype = serve_dtype;
  absl::StatusOr<Checkpoint> loaded = LoadCheckpoint(model->dir.path(), load);
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  model->checkpoint = std::move(*loaded);
  return model;
}

std::vector<int32_t> RandomTokens(int n, int vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> t(n);
  for (int32_t& id : t) id = static_cast<int32_t>(rng() % vocab);
  return t;
}

struct RunOptions {
  DType kv_dtype = DType::kF32;
  bool acp = false;
  int block_size = 16;
};

// Feeds `tokens` in chunks of the given sizes (cycled); returns every logit row.
std::vector<std::vector<float>> RunChunked(const Checkpoint& m, const std::vector<int32_t>& tokens,
                                           const std::vector<int>& chunks,
                                           const RunOptions& run = {},
                                           ForwardCounters* counters = nullptr) {
  ForwardOptions options;
  options.acp = run.acp;
  CpuForward forward(m.config, m.weights, options);
  testing::TestKv kv(m.config, tokens.size(), 1, run.kv_dtype, run.block_size);
  SequenceState state = SequenceState::Empty(m.config);
  std::vector<std::vector<float>> rows;
  std::vector<float> logits;
  size_t begin = 0;
  for (size_t c = 0; begin < tokens.size(); ++c) {
    const size_t n = std::min<size_t>(chunks[c % chunks.size()], tokens.size() - begin);
    ForwardSequence seq{absl::MakeConstSpan(tokens).subspan(begin, n), &state, kv.tables(0), true};
    forward.Run({&seq, 1}, kv.kv(), &logits, counters);
    for (size_t r = 0; r < n; ++r) {
      rows.emplace_back(logits.begin() + r * m.config.vocab_size,
                        logits.begin() + (r + 1) * m.config.vocab_size);
    }
    begin += n;
  }
  EXPECT_EQ(state.num_tokens, static_cast<int64_t>(tokens.size()));
  return rows;
}

void ExpectMatchesReference(const std::vector<std::vector<float>>& rows,
                            const std::vector<std::vector<double>>& ref, double tolerance,
                            const std::string& what) {
  ASSERT_EQ(rows.size(), ref.size()) << what;
  double worst = 0.0;
  for (size_t t = 0; t < ref.size(); ++t) {
    const double err = RelativeError(rows[t], ref[t]);
    worst = std::max(worst, err);
    ASSERT_LT(err, tolerance) << what << ": logit row " << t;
  }
  ::testing::Test::RecordProperty(what, std::to_string(worst));
}

class ForwardVariantTest : public ::testing::TestWithParam<Variant> {};

TEST_P(ForwardVariantTest, PrefillChunksAndDecodeMatchReference) {
  const FoxConfig config = SmallConfig(GetParam());
  RandomInitOptions init;
  init.seed = 11;
  init.fgate_bias = {-1.0f, 0.5f, 2.0f, 6.0f};  // from fast forgetting to long memory
  auto model = MakeModel(config, init);
  const std::vector<int32_t> tokens = RandomTokens(70, config.vocab_size, 3);
  const auto ref = ReferenceLogits(config, model->checkpoint.weights, tokens);

  ExpectMatchesReference(RunChunked(model->checkpoint, tokens, {70}), ref, 1e-5, "full prefill");
  // Chunk boundaries inside and at block edges, and a first chunk of one token.
  for (const std::vector<int>& split :
       {std::vector<int>{1, 15, 16, 38}, {7}, {16}, {33, 1, 2, 34}, {69, 1}}) {
    ExpectMatchesReference(RunChunked(model->checkpoint, tokens, split), ref, 1e-5, "chunked");
  }
  ExpectMatchesReference(RunChunked(model->checkpoint, tokens, {1}), ref, 1e-5, "decode");
}

INSTANTIATE_TEST_SUITE_P(AllVariants, ForwardVariantTest,
                         ::testing::Values(Variant::kProShared, Variant::kProPerHead,
                                           Variant::kLlama, Variant::kGateNoNorm));

TEST(ForwardTest, ShiftStateOfFirstTokenIsZero) {
  // A one-token sequence sees k~_{-1} = 0: its logits equal the reference's.
  const FoxConfig config = SmallConfig(Variant::kProShared);
  RandomInitOptions init;
  init.seed = 5;
  auto model = MakeModel(config, init);
  const std::vector<int32_t> tokens = {17};
  const auto ref = ReferenceLogits(config, model->checkpoint.weights, tokens);
  ExpectMatchesReference(RunChunked(model->checkpoint, tokens, {1}), ref, 1e-5, "first token");
}

TEST(ForwardTest, BatchOfMixedSequencesMatchesSeparateRuns) {
  const FoxConfig config = SmallConfig(Variant::kProShared);
  RandomInitOptions init;
  init.seed = 21;
  auto model = MakeModel(config, init);
  const Checkpoint& m = model->checkpoint;
  const int kSeqs = 3;
  std::vector<std::vector<int32_t>> tokens;
  std::vector<std::vector<std::vector<double>>> refs;
  for (int s = 0; s < kSeqs; ++s) {
    tokens.push_back(RandomTokens(20 + 9 * s, config.vocab_size, 100 + s));
    refs.push_back(ReferenceLogits(config, m.weights, tokens.back()));
  }
  // Step 1: prefill of 12, 5 and 20 tokens together; then decode steps that
  // mix one-token decodes with the rest of a prefill.
  ForwardOptions options;
  options.acp = false;
  CpuForward forward(config, m.weights, options);
  testing::TestKv kv(config, 64, kSeqs, DType::kF32);
  std::vector<SequenceState> states(kSeqs, SequenceState::Empty(config));
  std::vector<size_t> done(kSeqs, 0);
  const std::vector<std::vector<size_t>> schedule = {{12, 5, 20}, {1, 9, 1}, {1, 1, 1}, {3, 16, 4}};
  std::vector<float> logits;
  for (const std::vector<size_t>& step : schedule) {
    std::vector<ForwardSequence> batch;
    std::vector<int> ids;
    for (int s = 0; s < kSeqs; ++s) {
      const size_t n = std::min(step[s], tokens[s].size() - done[s]);
      if (n == 0) continue;
      batch.push_back({absl::MakeConstSpan(tokens[s]).subspan(done[s], n), &states[s], kv.tables(s),
                       s != 1});
      ids.push_back(s);
    }
    forward.Run(batch, kv.kv(), &logits, nullptr);
    size_t row = 0;
    for (size_t b = 0; b < batch.size(); ++b) {
      const int s = ids[b];
      const size_t n = batch[b].tokens.size();
      const size_t first = batch[b].all_logits ? 0 : n - 1;
      for (size_t t = first; t < n; ++t, ++row) {
        const std::vector<float> got(logits.begin() + row * config.vocab_size,
                                     logits.begin() + (row + 1) * config.vocab_size);
        EXPECT_LT(RelativeError(got, refs[s][done[s] + t]), 1e-5) << "seq " << s << " pos " << done[s] + t;
      }
      done[s] += n;
    }
    EXPECT_EQ(row * config.vocab_size, logits.size());
  }
}

TEST(ForwardTest, BfloatWeightsAndKv) {
  const FoxConfig config = SmallConfig(Variant::kProShared);
  RandomInitOptions init;
  init.seed = 8;
  // A float32 checkpoint served as bfloat16: the reference reads the same
  // rounded weights, so only the arithmetic differs.
  auto model = MakeModel(config, init, DType::kF32, DType::kBF16);
  ASSERT_EQ(model->checkpoint.weights.layers[0].q_proj.dtype, DType::kBF16);
  const std::vector<int32_t> tokens = RandomTokens(50, config.vocab_size, 4);
  const auto ref = ReferenceLogits(config, model->checkpoint.weights, tokens);
  ExpectMatchesReference(RunChunked(model->checkpoint, tokens, {50}), ref, 1e-5, "bf16 prefill");
  ExpectMatchesReference(RunChunked(model->checkpoint, tokens, {13, 1}), ref, 1e-5, "bf16 decode");
  // bfloat16 KV rounds K and V to 8 bits of mantissa.
  RunOptions bf16_kv;
  bf16_kv.kv_dtype = DType::kBF16;
  const auto prefill = RunChunked(model->checkpoint, tokens, {50}, bf16_kv);
  ExpectMatchesReference(prefill, ref, 2e-2, "bf16 kv prefill");
  const auto decode = RunChunked(model->checkpoint, tokens, {1}, bf16_kv);
  // Prefill and decode round the same K and V to bfloat16, except where the
  // last float32 bit of a projection (BLAS vs streaming kernel) moves one
  // element across a rounding boundary: agreement to 1e-3, not 1e-5.
  for (size_t t = 0; t < tokens.size(); ++t) {
    std::vector<double> p(prefill[t].begin(), prefill[t].end());
    EXPECT_LT(RelativeError(decode[t], p), 1e-3) << "bf16 kv: decode vs prefill at " << t;
  }
}

TEST(ForwardTest, BfloatCheckpointServedAsFloat) {
  const FoxConfig config = SmallConfig(Variant::kLlama);
  RandomInitOptions init;
  init.seed = 9;
  auto model = MakeModel(config, init, DType::kBF16, DType::kF32);
  ASSERT_EQ(model->checkpoint.weights.layers[0].q_proj.dtype, DType::kF32);
  const std::vector<int32_t> tokens = RandomTokens(30, config.vocab_size, 5);
  const auto ref = ReferenceLogits(config, model->checkpoint.weights, tokens);
  ExpectMatchesReference(RunChunked(model->checkpoint, tokens, {5, 1}), ref, 1e-5, "bf16 file");
}

// At long context L grows to thousands, where a float32 running sum loses the
// differences that matter; the cache's double anchors keep them.
TEST(ForwardTest, LongContextKeepsDecayPrecise) {
  const FoxConfig config = SmallConfig(Variant::kProShared, /*layers=*/1, /*heads=*/2, /*head_dim=*/16);
  RandomInitOptions init;
  init.seed = 12;
  init.fgate_bias = {0.3f, 0.6f};  // log f near -0.5: L reaches about -2000 at 4096 tokens
  auto model = MakeModel(config, init);
  const int kTokens = 4096;
  const std::vector<int32_t> tokens = RandomTokens(kTokens, config.vocab_size, 6);
  const auto ref = ReferenceLogits(config, model->checkpoint.weights, tokens);
  testing::ReferenceOptions float_l;
  float_l.float32_cumulative_l = true;
  const auto ref_float_l = ReferenceLogits(config, model->checkpoint.weights, tokens, float_l);
  // The float32 sum fails the bound at the end of the context...
  double float_l_error = 0.0;
  for (int t = kTokens - 64; t < kTokens; ++t) {
    std::vector<float> row(ref_float_l[t].begin(), ref_float_l[t].end());
    float_l_error = std::max(float_l_error, RelativeError(row, ref[t]));
  }
  EXPECT_GT(float_l_error, 1e-5) << "the context is too short to test L's precision";
  // ...while prefill, chunked prefill and decode all meet it everywhere.
  ExpectMatchesReference(RunChunked(model->checkpoint, tokens, {kTokens}), ref, 1e-5, "prefill");
  ExpectMatchesReference(RunChunked(model->checkpoint, tokens, {1000, 1, 77}), ref, 1e-5, "chunks");
}

double MaxLogprobDifference(const std::vector<std::vector<float>>& a,
                            const std::vector<std::vector<float>>& b) {
  double worst = 0.0;
  for (size_t t = 0; t < a.size(); ++t) {
    auto log_softmax = [](const std::vector<float>& row) {
      double m = *std::max_element(row.begin(), row.end()), s = 0.0;
      for (float x : row) s += std::exp(x - m);
      std::vector<double> out(row.size());
      for (size_t i = 0; i < row.size(); ++i) out[i] = row[i] - m - std::log(s);
      return out;
    };
    const auto la = log_softmax(a[t]), lb = log_softmax(b[t]);
    for (size_t i = 0; i < la.size(); ++i) worst = std::max(worst, std::fabs(la[i] - lb[i]));
  }
  return worst;
}

class AcpTest : public ::testing::TestWithParam<Variant> {};

// Half the heads forget within a few dozen tokens: ACP skips most of their
// keys, and every logprob stays within 1e-3 of the unpruned model.
TEST_P(AcpTest, SkippingMatchesNoSkipping) {
  const FoxConfig config = SmallConfig(GetParam());
  RandomInitOptions init;
  init.seed = 31;
  init.fgate_bias = {-2.0f, 0.0f, 8.0f, 8.0f};
  auto model = MakeModel(config, init);
  const std::vector<int32_t> tokens = RandomTokens(600, config.vocab_size, 7);
  RunOptions off, on;
  on.acp = true;
  ForwardCounters counters_on, counters_off;
  const auto logits_off = RunChunked(model->checkpoint, tokens, {600}, off, &counters_off);
  const auto logits_on = RunChunked(model->checkpoint, tokens, {600}, on, &counters_on);
  const auto decode_on = RunChunked(model->checkpoint, tokens, {200, 1}, on);
  EXPECT_EQ(counters_off.key_blocks_skipped, 0);
  EXPECT_GT(counters_on.key_blocks_skipped, counters_on.key_blocks_read / 4)
      << "the test model must make ACP skip a large share of key blocks";
  EXPECT_EQ(counters_on.key_blocks_read + counters_on.key_blocks_skipped,
            counters_off.key_blocks_read);
  EXPECT_LT(MaxLogprobDifference(logits_on, logits_off), 1e-3);
  EXPECT_LT(MaxLogprobDifference(decode_on, logits_off), 1e-3);
}

INSTANTIATE_TEST_SUITE_P(StaticAndDataDependentBound, AcpTest,
                         ::testing::Values(Variant::kProShared, Variant::kProPerHead,
                                           Variant::kLlama));

}  // namespace
}  // namespace fox
