// `foxserve generate`: offline generation through the engine. One prompt
// (--prompt, --prompt-ids) streams its text to stdout; --prompts-file drives
// every line of a file through the engine, --concurrency at a time, and
// reports throughput.
#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "engine/engine.h"
#include "models/tokenizer.h"
#include "nlohmann/json.hpp"
#include "server/cli_flags.h"
#include "server/commands.h"
#include "server/engine_flags.h"
#include "server/loaded_model.h"
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

absl::StatusOr<std::vector<std::string>> ReadPrompts(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("--prompts-file: cannot open ", path));
  std::vector<std::string> prompts;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) prompts.push_back(std::move(line));
  }
  if (prompts.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--prompts-file: ", path, " has no prompts"));
  }
  return prompts;
}

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "foxserve generate: %s\n", std::string(status.message()).c_str());
  return 1;
}

// One prompt's output as it accumulates.
struct Output {
  std::vector<int32_t> token_ids;
  std::vector<float> logprobs;
  std::string text;
  std::string finish_reason;
  std::string error;
  int64_t prompt_tokens = 0;
  double ttft_seconds = 0;
  double seconds = 0;
};

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

int RunGenerateCommand(int argc, char** argv) {
  std::string model_dir = DefaultModelDir(), prompt, prompt_ids, prompts_file, dtype;
  int64_t max_tokens = 32, min_tokens = 0, seed = -1, top_k = -1, concurrency = 16;
  double temperature = 1.0, top_p = 1.0, min_p = 0.0;
  bool ignore_eos = false, json = false, help = false;
  EngineFlags engine_flags;
  FlagSet flags("generate");
  flags.Add("model", &model_dir, "checkpoint directory (default: the embedded tiny model)");
  flags.Add("prompt", &prompt, "prompt text (a BOS token is prepended)");
  flags.Add("prompt-ids", &prompt_ids, "prompt as comma-separated token ids, taken as given");
  flags.Add("prompts-file", &prompts_file,
            "file with one text prompt per line (blank lines skipped)");
  flags.Add("concurrency", &concurrency, "requests in flight at once with --prompts-file");
  flags.Add("max-tokens", &max_tokens, "tokens to generate per prompt");
  flags.Add("min-tokens", &min_tokens, "tokens generated before EOS may end the output");
  flags.Add("ignore-eos", &ignore_eos, "keep generating past EOS");
  flags.Add("temperature", &temperature, "sampling temperature; 0 is greedy");
  flags.Add("top-p", &top_p, "nucleus sampling mass (1: off)");
  flags.Add("top-k", &top_k, "sample among the k most likely tokens (-1: off)");
  flags.Add("min-p", &min_p, "drop tokens below min-p times the top probability (0: off)");
  flags.Add("seed", &seed, "random seed for sampling (-1: random); prompt i gets seed + i");
  flags.Add("dtype", &dtype, "weight dtype in memory: float32 or bfloat16 (default: the file's)");
  engine_flags.Register(flags);
  flags.Add("json", &json, "print one JSON object per prompt: token_ids, text, logprobs, ...");
  flags.Add("help", &help, "show this help");
  if (absl::Status s = flags.Parse(argc, argv, 2); !s.ok()) {
    std::fprintf(stderr, "%s\n%s", std::string(s.message()).c_str(), flags.Usage().c_str());
    return 2;
  }
  if (help) {
    std::fputs(flags.Usage().c_str(), stdout);
    return 0;
  }
  const int given =
      flags.WasSet("prompt") + flags.WasSet("prompt-ids") + flags.WasSet("prompts-file");
  if (given != 1) {
    return Fail(absl::InvalidArgumentError(
        "give exactly one of --prompt, --prompt-ids and --prompts-file"));
  }
  if (concurrency < 1) return Fail(absl::InvalidArgumentError("--concurrency must be at least 1"));

  absl::StatusOr<LoadedModel> loaded = LoadModelForEngine(model_dir, dtype, engine_flags);
  if (!loaded.ok()) return Fail(loaded.status());

  // Prompts as token ids.
  std::vector<std::vector<int32_t>> prompts;
  if (flags.WasSet("prompt-ids")) {
    absl::StatusOr<std::vector<int32_t>> ids = ParseIds(prompt_ids);
    if (!ids.ok()) return Fail(ids.status());
    prompts.push_back(std::move(*ids));
  } else {
    std::vector<std::string> texts = {prompt};
    if (flags.WasSet("prompts-file")) {
      absl::StatusOr<std::vector<std::string>> lines = ReadPrompts(prompts_file);
      if (!lines.ok()) return Fail(lines.status());
      texts = std::move(*lines);
    }
    for (const std::string& text : texts) {
      absl::StatusOr<std::vector<int32_t>> ids = loaded->tokenizer->Encode(text, /*add_bos=*/true);
      if (!ids.ok()) return Fail(ids.status());
      prompts.push_back(std::move(*ids));
    }
  }

  SamplingParams params;
  params.max_tokens = max_tokens;
  params.min_tokens = min_tokens;
  params.ignore_eos = ignore_eos;
  params.temperature = static_cast<float>(temperature);
  params.top_p = static_cast<float>(top_p);
  params.top_k = static_cast<int32_t>(std::clamp<int64_t>(top_k, -1, 1 << 30));
  params.min_p = static_cast<float>(min_p);

  // Every stream's notifier wakes this thread, which drains them all.
  // Declared before the engine, whose shutdown may still call notifiers.
  std::mutex mu;
  std::condition_variable cv;
  bool woken = false;
  auto notify = [&] {
    std::lock_guard<std::mutex> lock(mu);
    woken = true;
    cv.notify_one();
  };

  absl::StatusOr<std::unique_ptr<EngineCore>> core =
      EngineCore::ForCheckpoint(loaded->checkpoint, loaded->tokenizer.get(), loaded->engine_config);
  if (!core.ok()) return Fail(core.status());
  Engine engine(std::move(*core));

  const bool stream_text = prompts.size() == 1 && !json;
  std::vector<Output> outputs(prompts.size());
  std::vector<std::pair<size_t, std::shared_ptr<RequestStream>>> active;
  size_t next = 0;
  const Clock::time_point start = Clock::now();
  while (next < prompts.size() || !active.empty()) {
    while (next < prompts.size() && static_cast<int64_t>(active.size()) < concurrency) {
      EngineRequest request;
      request.id = absl::StrCat("generate-", next);
      request.prompt_ids = prompts[next];
      request.params = params;
      if (seed >= 0) request.params.seed = static_cast<uint64_t>(seed) + next;
      absl::StatusOr<std::shared_ptr<RequestStream>> stream = engine.Submit(std::move(request));
      if (!stream.ok()) return Fail(stream.status());
      (*stream)->SetNotifier(notify);
      outputs[next].prompt_tokens = static_cast<int64_t>(prompts[next].size());
      active.emplace_back(next++, *stream);
    }
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return woken; });
      woken = false;
    }
    for (auto it = active.begin(); it != active.end();) {
      Output& out = outputs[it->first];
      bool done = false;
      while (std::optional<TokenEvent> event = it->second->TryNext()) {
        out.text += event->text;
        if (stream_text) {
          std::fputs(event->text.c_str(), stdout);
          std::fflush(stdout);
        }
        if (!event->is_finish()) {
          out.token_ids.push_back(event->token_id);
          out.logprobs.push_back(event->logprob);
          continue;
        }
        out.finish_reason = std::string(FinishReasonName(event->finish_reason));
        out.error = event->error;
        if (event->times.first_token) {
          out.ttft_seconds = Seconds(*event->times.first_token - event->times.arrival);
        }
        out.seconds = Seconds(*event->times.finished - event->times.arrival);
        done = true;
      }
      it = done ? active.erase(it) : it + 1;
    }
  }
  const double wall = Seconds(Clock::now() - start);
  const EngineStats stats = engine.Stats();
  engine.Shutdown();

  int64_t prompt_tokens = 0, generated = 0;
  int failures = 0;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Output& out = outputs[i];
    prompt_tokens += out.prompt_tokens;
    generated += static_cast<int64_t>(out.token_ids.size());
    if (!out.error.empty()) {
      ++failures;
      std::fprintf(stderr, "foxserve generate: prompt %zu: %s\n", i, out.error.c_str());
    }
    if (json) {
      nlohmann::json line = {{"index", i},
                             {"token_ids", out.token_ids},
                             {"text", out.text},
                             {"logprobs", out.logprobs},
                             {"finish_reason", out.finish_reason},
                             {"prompt_tokens", out.prompt_tokens}};
      std::cout << line.dump() << "\n";
    } else if (stream_text) {
      std::cout << "\n";
    } else {
      std::cout << "=== " << i << " (" << out.finish_reason << ")\n" << out.text << "\n";
    }
  }
  std::cout.flush();
  if (prompts.size() == 1) {
    const Output& out = outputs[0];
    const double decode = out.seconds - out.ttft_seconds;
    std::fprintf(
        stderr,
        "foxserve generate: %lld prompt tokens, first token after %.3f s, %zu generated "
        "(%.1f tokens/s), finish=%s\n",
        static_cast<long long>(out.prompt_tokens), out.ttft_seconds, out.token_ids.size(),
        out.token_ids.size() > 1 ? (out.token_ids.size() - 1) / std::max(decode, 1e-9) : 0.0,
        out.finish_reason.c_str());
  } else {
    std::fprintf(stderr,
                 "foxserve generate: %zu requests (concurrency %lld) in %.3f s: %.2f requests/s, "
                 "%lld prompt + %lld generated tokens, %.1f output tokens/s, %.1f total tokens/s; "
                 "%lld preemptions, %lld KV blocks evicted\n",
                 prompts.size(), static_cast<long long>(concurrency), wall,
                 prompts.size() / std::max(wall, 1e-9), static_cast<long long>(prompt_tokens),
                 static_cast<long long>(generated), generated / std::max(wall, 1e-9),
                 (prompt_tokens + generated) / std::max(wall, 1e-9),
                 static_cast<long long>(stats.counters.preemptions),
                 static_cast<long long>(stats.counters.blocks_evicted));
  }
  return failures == 0 ? 0 : 1;
}

}  // namespace fox
