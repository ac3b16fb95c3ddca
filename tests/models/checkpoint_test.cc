#include "models/checkpoint.h"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "gtest/gtest.h"
#include "models/checkpoint_writer.h"
#include "models/safetensors.h"
#include "nlohmann/json.hpp"
#include "tests/support/temp_dir.h"
#include "tests/support/test_models.h"

namespace fox {
namespace {

namespace fs = std::filesystem;
using testing::RoundTo;
using testing::SmallTestConfig;
using testing::TempDir;
using testing::WriteRandomTestModel;

std::vector<float> ValuesOf(const Tensor& t) {
  std::vector<float> out(t.numel());
  ConvertToF32(t.data, t.dtype, t.numel(), out.data());
  return out;
}

// Loads `dir` and checks every tensor against `written`, as stored in a file
// of `file_dtype` and served in `serve_dtype`.
void ExpectLoadedEquals(const std::string& dir, const FoxConfig& config, const TensorMap& written,
                        DType file_dtype, std::optional<DType> requested, DType serve_dtype) {
  absl::StatusOr<Checkpoint> ckpt = LoadCheckpoint(dir, {requested});
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_EQ(ckpt->config, config);
  EXPECT_EQ(ckpt->file_dtype, file_dtype);
  EXPECT_EQ(ckpt->weights.dtype, serve_dtype);
  ASSERT_EQ(ckpt->weights.layers.size(), static_cast<size_t>(config.num_layers));
  const std::vector<TensorSpec> specs = FoxTensorSpecs(config);
  ASSERT_EQ(specs.size(), written.size());
  int64_t total = 0;
  for (const TensorSpec& spec : specs) {
    const Tensor& t = BoundTensor(spec, ckpt->weights);
    ASSERT_FALSE(t.empty()) << spec.name;
    EXPECT_EQ(t.shape, spec.shape) << spec.name;
    EXPECT_EQ(t.dtype, spec.is_matrix ? serve_dtype : DType::kF32) << spec.name;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % DTypeSize(t.dtype), 0u) << spec.name;
    // Exact: a file value converts to the serving dtype by one rounding.
    const std::vector<float> expected =
        RoundTo(t.dtype, RoundTo(file_dtype, written.at(spec.name).values));
    EXPECT_EQ(ValuesOf(t), expected) << spec.name;
    total += t.numel();
  }
  EXPECT_EQ(total, config.NumParameters());
}

void ExpectAbsentOptionalTensors(const FoxWeights& w) {
  for (const LayerWeights& layer : w.layers) {
    EXPECT_TRUE(layer.k_shift.empty() && layer.v_shift.empty() && layer.q_norm.empty() &&
                layer.k_norm.empty() && layer.ogate.empty() && layer.output_norm.empty());
  }
}

// Expects LoadCheckpoint to fail with `code` and a message holding every needle.
void ExpectLoadError(const std::string& dir, absl::StatusCode code,
                     std::vector<std::string> needles) {
  absl::StatusOr<Checkpoint> ckpt = LoadCheckpoint(dir);
  ASSERT_FALSE(ckpt.ok());
  EXPECT_EQ(ckpt.status().code(), code) << ckpt.status();
  for (const std::string& needle : needles) {
    EXPECT_NE(ckpt.status().message().find(needle), std::string::npos)
        << ckpt.status() << "\nmissing: " << needle;
  }
}

struct RoundTripCase {
  DType file;
  std::optional<DType> requested;
  DType served;
};

TEST(CheckpointTest, RoundTripsEveryDtypeCombination) {
  const RoundTripCase cases[] = {
      {DType::kF32, std::nullopt, DType::kF32},   {DType::kF32, DType::kBF16, DType::kBF16},
      {DType::kBF16, std::nullopt, DType::kBF16}, {DType::kBF16, DType::kF32, DType::kF32},
      {DType::kF16, std::nullopt, DType::kF32},   {DType::kF16, DType::kBF16, DType::kBF16},
  };
  for (bool pro : {true, false}) {
    const FoxConfig config = SmallTestConfig(pro);
    for (const RoundTripCase& c : cases) {
      SCOPED_TRACE(::testing::Message() << "pro=" << pro << " file=" << DTypeName(c.file)
                                        << " served=" << DTypeName(c.served));
      TempDir dir;
      absl::StatusOr<TensorMap> written =
          WriteRandomTestModel(dir.path(), config, {.seed = 11}, {.dtype = c.file});
      ASSERT_TRUE(written.ok()) << written.status();
      ExpectLoadedEquals(dir.path(), config, *written, c.file, c.requested, c.served);
    }
  }
}

TEST(CheckpointTest, MatchingDtypeIsZeroCopy) {
  TempDir dir;
  ASSERT_TRUE(
      WriteRandomTestModel(dir.path(), SmallTestConfig(true), {}, {.dtype = DType::kF32}).ok());
  absl::StatusOr<Checkpoint> ckpt = LoadCheckpoint(dir.path());
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_EQ(ckpt->weights.storage.size(), 1u);  // the mapped file, nothing converted

  absl::StatusOr<Checkpoint> bf16 = LoadCheckpoint(dir.path(), {DType::kBF16});
  ASSERT_TRUE(bf16.ok()) << bf16.status();
  EXPECT_GT(bf16->weights.storage.size(), 1u);  // converted copies

  // A bfloat16 file served in float32 is converted throughout; nothing keeps
  // the mapping.
  TempDir bf16_dir;
  ASSERT_TRUE(
      WriteRandomTestModel(bf16_dir.path(), SmallTestConfig(true), {}, {.dtype = DType::kBF16})
          .ok());
  absl::StatusOr<Checkpoint> f32 = LoadCheckpoint(bf16_dir.path(), {DType::kF32});
  ASSERT_TRUE(f32.ok()) << f32.status();
  EXPECT_EQ(f32->weights.storage.size(), FoxTensorSpecs(SmallTestConfig(true)).size());
}

TEST(CheckpointTest, LlamaVariantUsesPlainProjectionNames) {
  TempDir dir;
  const FoxConfig config = SmallTestConfig(false);
  absl::StatusOr<TensorMap> written = WriteRandomTestModel(dir.path(), config);
  ASSERT_TRUE(written.ok());
  EXPECT_EQ(written->count("model.layers.0.attn.k_proj.weight"), 1u);
  EXPECT_EQ(written->count("model.layers.0.attn.k_proj.linear.weight"), 0u);
  absl::StatusOr<Checkpoint> ckpt = LoadCheckpoint(dir.path());
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  ExpectAbsentOptionalTensors(ckpt->weights);
}

TEST(CheckpointTest, PerHeadAndSharedQkNorm) {
  for (bool shared : {true, false}) {
    TempDir dir;
    const FoxConfig config = SmallTestConfig(true, 0, shared);
    absl::StatusOr<TensorMap> written = WriteRandomTestModel(dir.path(), config);
    ASSERT_TRUE(written.ok());
    absl::StatusOr<Checkpoint> ckpt = LoadCheckpoint(dir.path());
    ASSERT_TRUE(ckpt.ok()) << ckpt.status();
    EXPECT_EQ(ckpt->weights.layers[1].q_norm.shape, std::vector<int64_t>{shared ? 16 : 64});
    EXPECT_EQ(ckpt->weights.layers[1].k_norm.shape, std::vector<int64_t>{shared ? 16 : 64});
    ExpectLoadedEquals(dir.path(), config, *written, DType::kF32, std::nullopt, DType::kF32);
  }
}

// Configs written before qk_norm_share_param_across_head existed omit it; the
// weights' shape decides.
TEST(CheckpointTest, AbsentQkNormSharingIsSettledByShape) {
  for (bool shared : {true, false}) {
    TempDir dir;
    ASSERT_TRUE(WriteRandomTestModel(dir.path(), SmallTestConfig(true, 0, shared)).ok());
    nlohmann::json j = nlohmann::json::parse(testing::ReadFileOrDie(dir.File("config.json")));
    j.erase("qk_norm_share_param_across_head");
    testing::WriteFileOrDie(dir.File("config.json"), j.dump());
    absl::StatusOr<Checkpoint> ckpt = LoadCheckpoint(dir.path());
    ASSERT_TRUE(ckpt.ok()) << ckpt.status();
    EXPECT_EQ(ckpt->config.qk_norm_shared, shared);
  }
}

TEST(CheckpointTest, ShardedRoundTrip) {
  for (DType dtype : {DType::kF32, DType::kBF16}) {
    TempDir dir;
    const FoxConfig config = SmallTestConfig(true, 96);
    absl::StatusOr<TensorMap> written =
        WriteRandomTestModel(dir.path(), config, {.seed = 3}, {.dtype = dtype, .num_shards = 3});
    ASSERT_TRUE(written.ok()) << written.status();
    EXPECT_FALSE(fs::exists(dir.File("model.safetensors")));
    EXPECT_TRUE(fs::exists(dir.File("model-00003-of-00003.safetensors")));
    ExpectLoadedEquals(dir.path(), config, *written, dtype, std::nullopt, dtype);
  }
}

TEST(CheckpointTest, MisalignedDataIsCopied) {
  TempDir dir;
  const FoxConfig config = SmallTestConfig(false);
  absl::StatusOr<TensorMap> written = WriteRandomTestModel(dir.path(), config);
  ASSERT_TRUE(written.ok());
  // Grow the header by two spaces: every float now starts 2 bytes off.
  std::string file = testing::ReadFileOrDie(dir.File("model.safetensors"));
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(file[i]);
  file.insert(8 + n, "  ");
  n += 2;
  for (int i = 0; i < 8; ++i) file[i] = static_cast<char>(n >> (8 * i));
  testing::WriteFileOrDie(dir.File("model.safetensors"), file);
  ExpectLoadedEquals(dir.path(), config, *written, DType::kF32, std::nullopt, DType::kF32);
}

TEST(CheckpointTest, MissingFiles) {
  TempDir dir;
  ExpectLoadError(dir.path(), absl::StatusCode::kNotFound, {"config.json"});
  testing::WriteFileOrDie(dir.File("config.json"), FoxConfigToJson(SmallTestConfig(true)));
  ExpectLoadError(dir.path(), absl::StatusCode::kNotFound, {"model.safetensors"});
}

TEST(CheckpointTest, BadConfigNamesFieldAndFile) {
  TempDir dir;
  ASSERT_TRUE(WriteRandomTestModel(dir.path(), SmallTestConfig(true)).ok());
  nlohmann::json j = nlohmann::json::parse(testing::ReadFileOrDie(dir.File("config.json")));
  j["fgate_type"] = "none";
  testing::WriteFileOrDie(dir.File("config.json"), j.dump());
  ExpectLoadError(dir.path(), absl::StatusCode::kInvalidArgument,
                  {dir.File("config.json"), "fgate_type"});
}

TEST(CheckpointTest, MissingTensor) {
  TempDir dir;
  const FoxConfig config = SmallTestConfig(true);
  TensorMap tensors = RandomFoxTensors(config, {});
  tensors.erase("model.layers.1.attn.v_proj.shift_proj.weight");
  ASSERT_TRUE(WriteFoxCheckpoint(dir.path(), config, tensors, {}).ok());
  ExpectLoadError(dir.path(), absl::StatusCode::kInvalidArgument,
                  {dir.File("model.safetensors"),
                   "missing tensor 'model.layers.1.attn.v_proj.shift_proj.weight'"});
}

TEST(CheckpointTest, ShiftConfigWithPlainProjectionIsMissingTheShiftNames) {
  TempDir dir;
  const FoxConfig llama = SmallTestConfig(false);
  ASSERT_TRUE(WriteFoxCheckpoint(dir.path(), llama, RandomFoxTensors(llama, {}), {}).ok());
  FoxConfig shifted = llama;
  shifted.use_k_shift = true;
  testing::WriteFileOrDie(dir.File("config.json"), FoxConfigToJson(shifted));
  ExpectLoadError(dir.path(), absl::StatusCode::kInvalidArgument, {"model.layers.0.attn.k_proj"});
}

TEST(CheckpointTest, UnexpectedTensor) {
  TempDir dir;
  const FoxConfig config = SmallTestConfig(false);
  TensorMap tensors = RandomFoxTensors(config, {});
  tensors["model.layers.0.attn.q_norm.weight"] = {{16}, std::vector<float>(16, 1.0f)};
  ASSERT_TRUE(WriteFoxCheckpoint(dir.path(), config, tensors, {}).ok());
  ExpectLoadError(
      dir.path(), absl::StatusCode::kInvalidArgument,
      {dir.File("model.safetensors"), "unexpected tensor 'model.layers.0.attn.q_norm.weight'"});
}

TEST(CheckpointTest, WrongShape) {
  TempDir dir;
  const FoxConfig config = SmallTestConfig(true);
  TensorMap tensors = RandomFoxTensors(config, {});
  tensors["model.layers.1.mlp.down_proj.weight"] = {
      {256, 64}, std::vector<float>(256 * 64, 0.5f)};  // transposed
  ASSERT_TRUE(WriteFoxCheckpoint(dir.path(), config, tensors, {}).ok());
  ExpectLoadError(dir.path(), absl::StatusCode::kInvalidArgument,
                  {dir.File("model.safetensors"), "model.layers.1.mlp.down_proj.weight",
                   "[256, 64]", "[64, 256]"});
}

TEST(CheckpointTest, UnsupportedDtype) {
  TempDir dir;
  const FoxConfig config = SmallTestConfig(false);
  ASSERT_TRUE(WriteRandomTestModel(dir.path(), config).ok());
  // Relabel model.norm.weight as I32: same byte count, so only the dtype is wrong.
  std::string file = testing::ReadFileOrDie(dir.File("model.safetensors"));
  const std::string from = R"("model.norm.weight":{"dtype":"F32","shape":[64])";
  const std::string to = R"("model.norm.weight":{"dtype":"I32","shape":[64])";
  const size_t at = file.find(from);
  ASSERT_NE(at, std::string::npos);
  file.replace(at, from.size(), to);
  testing::WriteFileOrDie(dir.File("model.safetensors"), file);
  ExpectLoadError(dir.path(), absl::StatusCode::kInvalidArgument,
                  {dir.File("model.safetensors"), "model.norm.weight", "unsupported dtype I32"});
}

TEST(CheckpointTest, ServingInFloat16IsRefused) {
  TempDir dir;
  ASSERT_TRUE(WriteRandomTestModel(dir.path(), SmallTestConfig(false)).ok());
  EXPECT_EQ(LoadCheckpoint(dir.path(), {DType::kF16}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

class ShardedErrorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(
        WriteRandomTestModel(dir_.path(), SmallTestConfig(true), {}, {.num_shards = 2}).ok());
    index_ =
        nlohmann::json::parse(testing::ReadFileOrDie(dir_.File("model.safetensors.index.json")));
  }
  void SaveIndex() {
    testing::WriteFileOrDie(dir_.File("model.safetensors.index.json"), index_.dump());
  }

  TempDir dir_;
  nlohmann::json index_;
};

TEST_F(ShardedErrorTest, MissingShard) {
  fs::remove(dir_.File("model-00002-of-00002.safetensors"));
  ExpectLoadError(
      dir_.path(), absl::StatusCode::kNotFound,
      {dir_.File("model.safetensors.index.json"), "model-00002-of-00002.safetensors", "missing"});
}

TEST_F(ShardedErrorTest, IndexedTensorAbsentFromItsShard) {
  index_["weight_map"]["model.layers.0.attn.extra.weight"] = "model-00001-of-00002.safetensors";
  SaveIndex();
  ExpectLoadError(dir_.path(), absl::StatusCode::kInvalidArgument,
                  {dir_.File("model-00001-of-00002.safetensors"),
                   "model.layers.0.attn.extra.weight", "not in this shard"});
}

TEST_F(ShardedErrorTest, ShardTensorNotInIndex) {
  index_["weight_map"].erase("model.norm.weight");
  SaveIndex();
  ExpectLoadError(dir_.path(), absl::StatusCode::kInvalidArgument,
                  {"model.norm.weight", "not listed"});
}

TEST_F(ShardedErrorTest, TensorIndexedInTheWrongShard) {
  index_["weight_map"]["lm_head.weight"] = "model-00001-of-00002.safetensors";
  SaveIndex();
  ExpectLoadError(dir_.path(), absl::StatusCode::kInvalidArgument, {"lm_head.weight"});
}

TEST_F(ShardedErrorTest, MalformedIndex) {
  testing::WriteFileOrDie(dir_.File("model.safetensors.index.json"), "{\"weight_map\": ");
  ExpectLoadError(dir_.path(), absl::StatusCode::kInvalidArgument,
                  {dir_.File("model.safetensors.index.json"), "malformed JSON"});
}

// Loads a large checkpoint named by FOX_TEST_CHECKPOINT_DIR (for example one
// written by `foxserve make-model --config 760m`) and reports the time taken.
TEST(CheckpointTest, LoadsLargeCheckpointFromEnvironment) {
  const char* dir = std::getenv("FOX_TEST_CHECKPOINT_DIR");
  if (dir == nullptr) GTEST_SKIP() << "FOX_TEST_CHECKPOINT_DIR not set";
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<Checkpoint> ckpt = LoadCheckpoint(dir);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  int64_t total = 0;
  double checksum = 0;
  const auto touch_start = std::chrono::steady_clock::now();
  for (const TensorSpec& spec : FoxTensorSpecs(ckpt->config)) {
    const Tensor& t = BoundTensor(spec, ckpt->weights);
    total += t.numel();
    const std::vector<float> values = ValuesOf(t);  // reads every page once
    for (size_t i = 0; i < values.size(); i += 4096) checksum += values[i];
  }
  const double touch_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - touch_start).count();
  EXPECT_EQ(total, ckpt->config.NumParameters());
  std::printf(
      "loaded %s: %lld parameters, %s in the files, served as %s; LoadCheckpoint %.3f s, "
      "reading every tensor once %.3f s (checksum %g)\n",
      dir, static_cast<long long>(total), DTypeName(ckpt->file_dtype),
      DTypeName(ckpt->weights.dtype), seconds, touch_seconds, checksum);
}

}  // namespace
}  // namespace fox
