#include "models/config.h"

#include <string>

#include "gtest/gtest.h"
#include "models/weights.h"
#include "nlohmann/json.hpp"
#include "tests/support/temp_dir.h"

namespace fox {
namespace {

using nlohmann::json;

// A config.json as the authors' code saves it for the 125M FoX-Pro, including
// fields that do not change the math.
json ReleasedStyleConfig() {
  return json::parse(R"({
    "architectures": ["ForgettingTransformerForCausalLM"],
    "attention_bias": false, "bos_token_id": null, "decay_time_max": null, "decay_time_min": null,
    "elementwise_affine": true, "eos_token_id": null, "fgate_bias_init": false, "fgate_type": "full",
    "fuse_cross_entropy": true, "fuse_norm": true, "hidden_act": "swish", "hidden_ratio": 4,
    "hidden_size": 768, "initializer_range": 0.02, "intermediate_size": 1792,
    "log_pruning_tolerance": null, "max_position_embeddings": null,
    "model_type": "forgetting_transformer-project_fox", "norm_eps": 1e-06, "num_heads": 12,
    "num_hidden_layers": 12, "num_kv_heads": null, "ogate_act": "sigmoid", "pad_token_id": null,
    "qk_norm": true, "qk_norm_share_param_across_head": true, "rope_base": 500000.0,
    "tie_word_embeddings": false, "torch_dtype": "float32", "transformers_version": "4.44.0",
    "use_cache": true, "use_k_shift": true, "use_output_gate": true, "use_output_norm": true,
    "use_rope": false, "use_v_shift": true, "vocab_size": 50257, "window_size": null
  })");
}

int64_t SumOfSpecs(const FoxConfig& c) {
  int64_t n = 0;
  for (const TensorSpec& spec : FoxTensorSpecs(c)) {
    int64_t numel = 1;
    for (int64_t d : spec.shape) numel *= d;
    n += numel;
  }
  return n;
}

TEST(FoxConfigTest, ReleasedParameterCounts) {
  EXPECT_EQ(NamedFoxConfig("125m", true)->NumParameters(), 162'491'280);
  EXPECT_EQ(NamedFoxConfig("360m", true)->NumParameters(), 418'756'992);
  EXPECT_EQ(NamedFoxConfig("760m", true)->NumParameters(), 836'636'736);
}

TEST(FoxConfigTest, PerHeadQkNormAddsTwoHMinusDPerLayer) {
  for (const char* name : {"tiny", "125m", "360m", "760m"}) {
    FoxConfig shared = *NamedFoxConfig(name, true);
    FoxConfig per_head = shared;
    per_head.qk_norm_shared = false;
    EXPECT_EQ(per_head.NumParameters() - shared.NumParameters(),
              int64_t{2} * (shared.hidden_size - shared.head_dim) * shared.num_layers)
        << name;
  }
}

TEST(FoxConfigTest, NumParametersMatchesTheTensorLayout) {
  for (const char* name : {"tiny", "125m", "360m", "760m"}) {
    for (bool pro : {true, false}) {
      for (bool shared : {true, false}) {
        FoxConfig c = *NamedFoxConfig(name, pro);
        c.qk_norm_shared = shared;
        EXPECT_EQ(c.NumParameters(), SumOfSpecs(c))
            << name << " pro=" << pro << " shared=" << shared;
      }
    }
  }
}

TEST(FoxConfigTest, NamedConfigurations) {
  FoxConfig tiny = *NamedFoxConfig("tiny", true);
  EXPECT_EQ(tiny.num_layers, 4);
  EXPECT_EQ(tiny.hidden_size, 256);
  EXPECT_EQ(tiny.num_heads, 4);
  EXPECT_EQ(tiny.head_dim, 64);
  EXPECT_EQ(tiny.vocab_size, 50257);
  EXPECT_EQ(tiny.intermediate_size, 768);  // 256 * ceil(682 / 256)

  FoxConfig pro = *NamedFoxConfig("760m", true);
  EXPECT_EQ(pro.head_dim, 64);
  EXPECT_TRUE(pro.use_k_shift && pro.use_v_shift && pro.qk_norm && pro.qk_norm_shared);
  EXPECT_TRUE(pro.use_output_gate && pro.use_output_norm);
  FoxConfig llama = *NamedFoxConfig("760m", false);
  EXPECT_FALSE(llama.use_k_shift || llama.use_v_shift || llama.qk_norm || llama.use_output_gate ||
               llama.use_output_norm);
  EXPECT_EQ(llama.intermediate_size, 3584);
  EXPECT_EQ(NamedFoxConfig("1b").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(FoxConfigTest, DefaultIntermediateSize) {
  EXPECT_EQ(DefaultIntermediateSize(64), 256);    // int(170.67) = 170 -> 256
  EXPECT_EQ(DefaultIntermediateSize(768), 2048);  // exactly 2048
  EXPECT_EQ(DefaultIntermediateSize(1536), 4096);
  EXPECT_EQ(DefaultIntermediateSize(1000, 3.5), 2560);  // int(2333.33) -> 2560
}

TEST(FoxConfigTest, ParsesTheAuthorsLayout) {
  absl::StatusOr<FoxConfig> c = ParseFoxConfig(ReleasedStyleConfig().dump(), "config.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(*c, *NamedFoxConfig("125m", true));
  EXPECT_EQ(c->bos_token_id, -1);
  EXPECT_EQ(c->norm_eps, 1e-6f);
  EXPECT_EQ(c->qk_norm_eps, 1e-5f);
}

TEST(FoxConfigTest, DefaultsForAbsentFields) {
  json j = {{"model_type", "forgetting_transformer-project_fox"},
            {"vocab_size", 300},
            {"hidden_size", 96},
            {"num_hidden_layers", 3},
            {"num_heads", 6},
            {"hidden_ratio", 3},
            {"norm_eps", 1e-5},
            {"bos_token_id", 0},
            {"eos_token_id", 299}};
  absl::StatusOr<FoxConfig> c = ParseFoxConfig(j.dump(), "config.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->head_dim, 16);
  EXPECT_EQ(c->intermediate_size, 256);  // int(96 * 3 * 2/3) = 192 -> 256
  EXPECT_EQ(c->norm_eps, 1e-5f);
  EXPECT_FALSE(c->use_k_shift || c->use_v_shift || c->qk_norm || c->use_output_gate ||
               c->use_output_norm);
  EXPECT_FALSE(c->qk_norm_shared);  // the authors' current default
  EXPECT_EQ(c->bos_token_id, 0);
  EXPECT_EQ(c->eos_token_id, 299);

  j.erase("hidden_ratio");
  j["intermediate_size"] = nullptr;
  EXPECT_EQ(ParseFoxConfig(j.dump(), "config.json")->intermediate_size,
            256);  // ratio 4: int(256) = 256
}

TEST(FoxConfigTest, JsonRoundTrip) {
  for (const char* name : {"tiny", "125m", "360m", "760m"}) {
    for (bool pro : {true, false}) {
      FoxConfig c = *NamedFoxConfig(name, pro);
      c.qk_norm_shared = !pro;  // exercise both values
      c.eos_token_id = pro ? 50256 : -1;
      const std::string text = FoxConfigToJson(c);
      absl::StatusOr<FoxConfig> back = ParseFoxConfig(text, "config.json");
      ASSERT_TRUE(back.ok()) << back.status();
      EXPECT_EQ(*back, c) << text;
      EXPECT_NE(text.find("\"norm_eps\": 1e-06"), std::string::npos) << text;
    }
  }
}

TEST(FoxConfigTest, AcceptsHarmlessValues) {
  json j = ReleasedStyleConfig();
  j["num_kv_heads"] = 12;  // equal to num_heads: no grouping
  EXPECT_TRUE(ParseFoxConfig(j.dump(), "c").ok());
  j = ReleasedStyleConfig();
  j["use_output_gate"] = false;
  j["ogate_act"] = "silu";  // no gate to apply it to
  EXPECT_TRUE(ParseFoxConfig(j.dump(), "c").ok());
  j = ReleasedStyleConfig();
  j["rope_base"] = 10000.0;
  j["elementwise_affine"] = false;  // the authors' blocks never read it
  EXPECT_TRUE(ParseFoxConfig(j.dump(), "c").ok());
}

struct BadField {
  const char* field;
  json value;  // null json with erase = true removes the field
  bool erase = false;
};

TEST(FoxConfigTest, HostileJsonIsRefusedWhileParsing) {
  const std::string deep = "{\"model_type\": " + std::string(100000, '[') +
                           std::string(100000, ']') + "}";
  absl::StatusOr<FoxConfig> c = ParseFoxConfig(deep, "config.json");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), "config.json nests arrays and objects deeper than 64 levels");
  c = ParseFoxConfig(R"({"hidden_size": 1e400})", "config.json");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("config.json is not valid JSON"), std::string::npos)
      << c.status();
  // A bad value is described briefly, never dumped whole.
  nlohmann::json j = ReleasedStyleConfig();
  j["model_type"] = std::string(5000, 'x');
  c = ParseFoxConfig(j.dump(), "config.json");
  ASSERT_FALSE(c.ok());
  EXPECT_LT(c.status().message().size(), 300u) << c.status();
  j["model_type"] = nlohmann::json::array({nlohmann::json::array({"llama"})});
  c = ParseFoxConfig(j.dump(), "config.json");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("is a list"), std::string::npos) << c.status();
}

TEST(FoxConfigTest, RefusesValuesThatChangeTheMathNamingFieldAndFile) {
  const BadField cases[] = {
      {"model_type", "llama"},
      {"model_type", nullptr, true},
      {"fgate_type", "bias_only"},
      {"fgate_type", "none"},
      {"fgate_type", "fixed"},
      {"use_rope", true},
      {"hidden_act", "gelu"},
      {"ogate_act", "silu"},
      {"attention_bias", true},
      {"window_size", 512},
      {"num_kv_heads", 4},
      {"tie_word_embeddings", true},
      {"hidden_size", 770},  // not divisible by 12 heads
      {"hidden_size", 0},
      {"hidden_size", -768},
      {"hidden_size", "768"},
      {"hidden_size", 768.5},
      {"hidden_size", nullptr, true},
      {"num_hidden_layers", 0},
      {"num_heads", 0},
      {"vocab_size", nullptr, true},
      {"vocab_size", 18446744073709551615ull},
      {"intermediate_size", -1},
      {"norm_eps", -1e-6},
      {"norm_eps", "small"},
      {"use_k_shift", "yes"},
      {"qk_norm", 1},
      {"bos_token_id", 50257},
      {"eos_token_id", -2},
  };
  for (const BadField& bad : cases) {
    json j = ReleasedStyleConfig();
    if (bad.erase) {
      j.erase(bad.field);
    } else {
      j[bad.field] = bad.value;
    }
    absl::StatusOr<FoxConfig> c = ParseFoxConfig(j.dump(), "ckpt/config.json");
    ASSERT_FALSE(c.ok()) << bad.field << " = " << bad.value.dump();
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
    const std::string message(c.status().message());
    EXPECT_NE(message.find(bad.field), std::string::npos) << message;
    EXPECT_NE(message.find("ckpt/config.json"), std::string::npos) << message;
  }
}

TEST(FoxConfigTest, RefusesZeroHiddenRatioWhenIntermediateSizeIsNull) {
  json j = ReleasedStyleConfig();
  j["intermediate_size"] = nullptr;
  j["hidden_ratio"] = 0;
  absl::StatusOr<FoxConfig> c = ParseFoxConfig(j.dump(), "config.json");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("hidden_ratio"), std::string::npos);
}

TEST(FoxConfigTest, MalformedJson) {
  for (const char* text : {"", "{", "{\"vocab_size\": }", "[1, 2]", "null"}) {
    absl::StatusOr<FoxConfig> c = ParseFoxConfig(text, "m/config.json");
    ASSERT_FALSE(c.ok()) << text;
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(c.status().message().find("m/config.json"), std::string::npos);
  }
}

TEST(FoxConfigTest, LoadFromFile) {
  testing::TempDir dir;
  EXPECT_EQ(LoadFoxConfig(dir.File("config.json")).status().code(), absl::StatusCode::kNotFound);
  testing::WriteFileOrDie(dir.File("config.json"), ReleasedStyleConfig().dump());
  absl::StatusOr<FoxConfig> c = LoadFoxConfig(dir.File("config.json"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->hidden_size, 768);
}

}  // namespace
}  // namespace fox
