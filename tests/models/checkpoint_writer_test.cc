#include "models/checkpoint_writer.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>

#include "gtest/gtest.h"
#include "models/safetensors.h"
#include "nlohmann/json.hpp"
#include "tests/support/temp_dir.h"
#include "tests/support/test_models.h"

namespace fox {
namespace {

namespace fs = std::filesystem;
using testing::ReadFileOrDie;
using testing::SmallTestConfig;
using testing::TempDir;

struct Moments {
  double mean = 0, stddev = 0;
};

Moments MomentsOf(const std::vector<float>& v) {
  double sum = 0, sum_sq = 0;
  for (float x : v) sum += x, sum_sq += static_cast<double>(x) * x;
  const double mean = sum / v.size();
  return {mean, std::sqrt(sum_sq / v.size() - mean * mean)};
}

TEST(RandomFoxTensorsTest, DeterministicInTheSeed) {
  const FoxConfig config = SmallTestConfig(true);
  const TensorMap a = RandomFoxTensors(config, {.seed = 5});
  const TensorMap b = RandomFoxTensors(config, {.seed = 5});
  const TensorMap c = RandomFoxTensors(config, {.seed = 6});
  ASSERT_EQ(a.size(), FoxTensorSpecs(config).size());
  for (const auto& [name, t] : a) {
    EXPECT_EQ(t.values, b.at(name).values) << name;
    if (name.find("fgate_proj.bias") == std::string::npos) {
      EXPECT_NE(t.values, c.at(name).values) << name;
    }
  }
  // Different tensors of one model are not copies of each other.
  EXPECT_NE(a.at("model.layers.0.attn.q_proj.weight").values,
            a.at("model.layers.0.attn.o_proj.weight").values);
}

TEST(RandomFoxTensorsTest, Distributions) {
  const FoxConfig config = *NamedFoxConfig("tiny", true);
  for (const TensorSpec& spec : FoxTensorSpecs(config)) {
    if (spec.layer > 0) continue;  // one layer is plenty
    const HostTensor t = RandomFoxTensor(spec, {.seed = 1, .std = 0.05f});
    ASSERT_EQ(t.shape, spec.shape);
    const Moments m = MomentsOf(t.values);
    if (spec.name.ends_with("fgate_proj.bias")) {
      for (float b : t.values) EXPECT_EQ(b, 6.0f);
    } else if (spec.name.ends_with("norm.weight")) {
      EXPECT_NEAR(m.mean, 1.0, 0.05) << spec.name;    // near 1 ...
      EXPECT_NEAR(m.stddev, 0.1, 0.03) << spec.name;  // ... but not degenerate
    } else {
      EXPECT_NEAR(m.mean, 0.0, 0.005) << spec.name;
      EXPECT_NEAR(m.stddev, 0.05, 0.005) << spec.name;
    }
  }
}

TEST(RandomFoxTensorsTest, ForgetGateBiasPerHead) {
  const FoxConfig config = SmallTestConfig(false);
  const TensorMap t = RandomFoxTensors(config, {.fgate_bias = {1.0f, 2.0f, 8.0f, -3.0f}});
  for (int layer = 0; layer < config.num_layers; ++layer) {
    EXPECT_EQ(t.at("model.layers." + std::to_string(layer) + ".attn.fgate_proj.bias").values,
              (std::vector<float>{1.0f, 2.0f, 8.0f, -3.0f}));
  }
  EXPECT_DEATH(RandomFoxTensors(config, {.fgate_bias = {1.0f, 2.0f}}),
               "fgate_bias holds 2 values for 4 heads");
}

TEST(WriteSafetensorsTest, LayoutAndValues) {
  TempDir dir;
  const TensorMap tensors = {{"b", {{3}, {1.0f, -2.5f, 1e-3f}}},
                             {"a", {{2, 2}, {0.1f, 0.2f, 0.3f, 65504.0f}}}};
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    const std::string path = dir.File(std::string(DTypeName(dtype)) + ".safetensors");
    ASSERT_TRUE(WriteSafetensors(path, tensors, dtype).ok());
    const std::string file = ReadFileOrDie(path);
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(file[i]);
    EXPECT_EQ((8 + n) % 8, 0u);  // tensor data starts aligned
    const nlohmann::json header = nlohmann::json::parse(file.substr(8, n));
    EXPECT_EQ(header["__metadata__"], nlohmann::json({{"format", "pt"}}));
    EXPECT_EQ(header["a"]["dtype"], SafetensorsDTypeName(dtype));
    EXPECT_EQ(header["a"]["shape"], nlohmann::json({2, 2}));
    const int64_t size = DTypeSize(dtype);
    EXPECT_EQ(file.size(), 8 + n + 7 * size);
    for (const auto& [name, t] : tensors) {
      const int64_t begin = header[name]["data_offsets"][0];
      std::vector<uint8_t> expected(t.values.size() * size);
      ConvertFromF32(t.values.data(), t.values.size(), dtype, expected.data());
      EXPECT_EQ(file.substr(8 + n + begin, expected.size()),
                std::string(expected.begin(), expected.end()))
          << name;
    }
  }
}

TEST(WriteSafetensorsTest, RejectsValuesThatDoNotFillTheShape) {
  TempDir dir;
  absl::Status status =
      WriteSafetensors(dir.File("x.safetensors"), {{"a", {{2, 3}, {1, 2, 3}}}}, DType::kF32);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("'a'"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir.File("x.safetensors")));
  EXPECT_FALSE(fs::exists(dir.File("x.safetensors.tmp")));
}

TEST(WriteFoxCheckpointTest, ConfigJsonInTheAuthorsLayout) {
  TempDir dir;
  const FoxConfig config = SmallTestConfig(true);
  ASSERT_TRUE(
      WriteFoxCheckpoint(dir.path(), config, RandomFoxTensors(config, {}), {.dtype = DType::kBF16})
          .ok());
  const std::string text = ReadFileOrDie(dir.File("config.json"));
  EXPECT_EQ(*ParseFoxConfig(text, "config.json"), config);
  const nlohmann::json j = nlohmann::json::parse(text);
  EXPECT_EQ(j["model_type"], "forgetting_transformer-project_fox");
  EXPECT_EQ(j["architectures"][0], "ForgettingTransformerForCausalLM");
  EXPECT_EQ(j["torch_dtype"], "bfloat16");
  EXPECT_EQ(j["qk_norm_share_param_across_head"], true);
  EXPECT_EQ(j["fgate_type"], "full");
  EXPECT_TRUE(j["bos_token_id"].is_null());
}

TEST(WriteFoxCheckpointTest, ShardsAndIndex) {
  TempDir dir;
  const FoxConfig config = SmallTestConfig(true);
  const TensorMap tensors = RandomFoxTensors(config, {});
  ASSERT_TRUE(
      WriteFoxCheckpoint(dir.path(), config, tensors, {.dtype = DType::kBF16, .num_shards = 4})
          .ok());
  const nlohmann::json index =
      nlohmann::json::parse(ReadFileOrDie(dir.File("model.safetensors.index.json")));
  ASSERT_EQ(index["weight_map"].size(), tensors.size());
  int64_t bytes = 0;
  std::map<std::string, int> per_shard;
  for (const auto& [name, t] : tensors) {
    bytes += static_cast<int64_t>(t.values.size()) * 2;
    per_shard[index["weight_map"][name]]++;
  }
  EXPECT_EQ(index["metadata"]["total_size"], bytes);
  ASSERT_EQ(per_shard.size(), 4u);
  for (int k = 1; k <= 4; ++k) {
    const std::string name = "model-0000" + std::to_string(k) + "-of-00004.safetensors";
    EXPECT_GT(per_shard[name], 0) << name;
    absl::StatusOr<std::shared_ptr<const SafetensorsFile>> shard =
        SafetensorsFile::Open(dir.File(name));
    ASSERT_TRUE(shard.ok()) << shard.status();
    EXPECT_EQ(static_cast<int>((*shard)->tensors().size()), per_shard[name]);
  }
  // Rewriting as one file leaves no stale shards behind, and vice versa.
  ASSERT_TRUE(WriteFoxCheckpoint(dir.path(), config, tensors, {}).ok());
  EXPECT_FALSE(fs::exists(dir.File("model.safetensors.index.json")));
  EXPECT_FALSE(fs::exists(dir.File("model-00001-of-00004.safetensors")));
  ASSERT_TRUE(WriteFoxCheckpoint(dir.path(), config, tensors, {.num_shards = 2}).ok());
  EXPECT_FALSE(fs::exists(dir.File("model.safetensors")));
}

TEST(WriteFoxCheckpointTest, MoreShardsThanTensorsIsAnError) {
  TempDir dir;
  const FoxConfig config = SmallTestConfig(false);
  const TensorMap tensors = RandomFoxTensors(config, {});
  EXPECT_EQ(WriteFoxCheckpoint(dir.path(), config, tensors, {.num_shards = 0}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(WriteFoxCheckpoint(dir.path(), config, tensors,
                               {.num_shards = static_cast<int>(tensors.size()) + 1})
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(WriteFoxCheckpoint(dir.path(), config, tensors,
                                 {.num_shards = static_cast<int>(tensors.size())})
                  .ok());
}

// The streaming writer produces the very same bytes as writing the whole map.
TEST(WriteFoxCheckpointTest, StreamingMatchesTensorMap) {
  TempDir map_dir, stream_dir;
  const FoxConfig config = SmallTestConfig(true);
  const RandomInitOptions init{.seed = 9};
  ASSERT_TRUE(
      WriteFoxCheckpoint(map_dir.path(), config, RandomFoxTensors(config, init), {.num_shards = 2})
          .ok());
  HostTensor current;
  int calls = 0;
  const TensorProducer produce = [&](const TensorSpec& spec) -> const HostTensor& {
    ++calls;
    current = RandomFoxTensor(spec, init);
    return current;
  };
  ASSERT_TRUE(WriteFoxCheckpoint(stream_dir.path(), config, produce, {.num_shards = 2}).ok());
  EXPECT_EQ(calls, static_cast<int>(FoxTensorSpecs(config).size()));
  for (const char* name :
       {"config.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors"}) {
    EXPECT_EQ(ReadFileOrDie(map_dir.File(name)), ReadFileOrDie(stream_dir.File(name))) << name;
  }
}

}  // namespace
}  // namespace fox
