// `foxserve generate`: offline generation from one prompt on the CPU.
#include <cstdio>
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "engine/generator.h"
#include "kernels/cpu/threading.h"
#include "models/checkpoint.h"
#include "models/incremental_detokenizer.h"
#include "models/tokenizer.h"
#include "nlohmann/json.hpp"
#include "server/cli_flags.h"
#include "server/commands.h"
#include "server/dtype_flags.h"
#include "server/model_paths.h"

namespace fox {
namespace {

absl::StatusOr<std::vector<int32_t>> ParseIds(const std::string& text) {
  std::vector<int32_t> ids;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    int32_t id;
    if (!absl::SimpleAtoi(part, &id)) {
      return absl::InvalidArgumentError("--prompt-ids: '" + std::string(part) +
                                        "' is not a token id (expected e.g. 50256,464,3290)");
    }
    ids.push_back(id);
  }
  return ids;
}

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "foxserve generate: %s\n", std::string(status.message()).c_str());
  return 1;
}

}  // namespace

int RunGenerateCommand(int argc, char** argv) {
  std::string model_dir = DefaultModelDir(), prompt, prompt_ids, dtype, kv_dtype = "float32";
  std::string acp = "on";
  int64_t max_tokens = 32, seed = -1, threads = 0, block_size = 16;
  double temperature = 1.0, acp_log_eps = -10.0;
  bool json = false, help = false;
  FlagSet flags("generate");
  flags.Add("model", &model_dir, "checkpoint directory (default: the embedded tiny model)");
  flags.Add("prompt", &prompt, "prompt text (a BOS token is prepended)");
  flags.Add("prompt-ids", &prompt_ids, "prompt as comma-separated token ids, taken as given");
  flags.Add("max-tokens", &max_tokens, "tokens to generate");
  flags.Add("temperature", &temperature, "sampling temperature; 0 is greedy");
  flags.Add("seed", &seed, "random seed for sampling (-1: random)");
  flags.Add("dtype", &dtype, "weight dtype in memory: float32 or bfloat16 (default: the file's)");
  flags.Add("kv-dtype", &kv_dtype, "KV cache dtype: float32 or bfloat16");
  flags.Add("block-size", &block_size, "tokens per KV block");
  flags.Add("acp", &acp, "ACP compute skipping: on or off");
  flags.Add("acp-log-eps", &acp_log_eps, "log of ACP's tolerance eps");
  flags.Add("threads", &threads, "CPU threads (0: all cores)");
  flags.Add("json", &json, "print one JSON object with token_ids, text and logprobs");
  flags.Add("help", &help, "show this help");
  if (absl::Status s = flags.Parse(argc, argv, 2); !s.ok()) {
    std::fprintf(stderr, "%s\n%s", std::string(s.message()).c_str(), flags.Usage().c_str());
    return 2;
  }
  if (help) {
    std::fputs(flags.Usage().c_str(), stdout);
    return 0;
  }
  if (flags.WasSet("prompt") == flags.WasSet("prompt-ids")) {
    return Fail(absl::InvalidArgumentError("give exactly one of --prompt and --prompt-ids"));
  }
  if (acp != "on" && acp != "off") return Fail(absl::InvalidArgumentError("--acp must be on or off"));
  if (block_size < 1 || block_size > 256) {
    return Fail(absl::InvalidArgumentError("--block-size must be in [1, 256]"));
  }
  SetCpuNumThreads(static_cast<int>(threads));

  CheckpointOptions load_options;
  if (!dtype.empty()) {
    absl::StatusOr<DType> d = ParseWeightDType("--dtype", dtype);
    if (!d.ok()) return Fail(d.status());
    load_options.dtype = *d;
  }
  absl::StatusOr<DType> kv = ParseWeightDType("--kv-dtype", kv_dtype);
  if (!kv.ok()) return Fail(kv.status());
  absl::StatusOr<Checkpoint> model = LoadCheckpoint(model_dir, load_options);
  if (!model.ok()) return Fail(model.status());
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::Load(model_dir);
  if (!tokenizer.ok()) return Fail(tokenizer.status());

  absl::StatusOr<std::vector<int32_t>> ids =
      flags.WasSet("prompt") ? (*tokenizer)->Encode(prompt, /*add_bos=*/true) : ParseIds(prompt_ids);
  if (!ids.ok()) return Fail(ids.status());

  GenerateOptions options;
  options.max_tokens = max_tokens;
  options.sampling.temperature = static_cast<float>(temperature);
  if (seed >= 0) options.sampling.seed = static_cast<uint64_t>(seed);
  options.eos_token_id = (*tokenizer)->eos_id();
  options.kv_dtype = *kv;
  options.block_size = static_cast<int32_t>(block_size);
  options.acp = acp == "on";
  options.acp_log_eps = static_cast<float>(acp_log_eps);

  // Stream text as it becomes final unless JSON was asked for.
  IncrementalDetokenizer detokenizer(**tokenizer);
  TokenCallback on_token;
  if (!json) {
    on_token = [&](int32_t id, float) {
      std::fputs(detokenizer.Push(id).c_str(), stdout);
      std::fflush(stdout);
    };
  }
  absl::StatusOr<GenerateResult> result = Generate(*model, *ids, options, on_token);
  if (!result.ok()) return Fail(result.status());

  if (json) {
    absl::StatusOr<std::string> text = (*tokenizer)->Decode(result->token_ids);
    if (!text.ok()) return Fail(text.status());
    nlohmann::json out = {{"token_ids", result->token_ids},
                          {"text", *text},
                          {"logprobs", result->logprobs},
                          {"finish_reason", result->finish_reason},
                          {"prompt_tokens", ids->size()}};
    std::cout << out.dump() << std::endl;
  } else {
    std::fputs(detokenizer.Flush().c_str(), stdout);
    std::fputs("\n", stdout);
  }
  const double decode_rate =
      result->token_ids.size() > 1
          ? (result->token_ids.size() - 1) / std::max(result->decode_seconds, 1e-9)
          : 0.0;
  std::fprintf(stderr,
               "foxserve generate: %zu prompt tokens in %.3f s, %zu generated (%.1f tokens/s), "
               "finish=%s\n",
               ids->size(), result->prefill_seconds, result->token_ids.size(), decode_rate,
               result->finish_reason.c_str());
  return 0;
}

}  // namespace fox
