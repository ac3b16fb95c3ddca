// What the subcommands that run an engine (generate, serve) load first: the
// checkpoint (weights converted to --dtype when given), its tokenizer, and
// the engine configuration the engine flags give for that model.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "engine/engine_config.h"
#include "models/checkpoint.h"
#include "models/tokenizer.h"
#include "server/engine_flags.h"

namespace fox {

struct LoadedModel {
  Checkpoint checkpoint;
  std::unique_ptr<Tokenizer> tokenizer;
  EngineConfig engine_config;
};

// `dtype` empty: the file's. Errors name the flag or the file at fault.
absl::StatusOr<LoadedModel> LoadModelForEngine(const std::string& model_dir,
                                               const std::string& dtype,
                                               const EngineFlags& engine_flags);

}  // namespace fox
