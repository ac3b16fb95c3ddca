#include "server/loaded_model.h"

#include "server/dtype_flags.h"

namespace fox {

absl::StatusOr<LoadedModel> LoadModelForEngine(const std::string& model_dir,
                                               const std::string& dtype,
                                               const EngineFlags& engine_flags) {
  CheckpointOptions load_options;
  if (!dtype.empty()) {
    absl::StatusOr<DType> d = ParseWeightDType("--dtype", dtype);
    if (!d.ok()) return d.status();
    load_options.dtype = *d;
  }
  absl::StatusOr<Checkpoint> checkpoint = LoadCheckpoint(model_dir, load_options);
  if (!checkpoint.ok()) return checkpoint.status();
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::Load(model_dir);
  if (!tokenizer.ok()) return tokenizer.status();
  absl::StatusOr<EngineConfig> engine_config = engine_flags.ToConfig(checkpoint->config);
  if (!engine_config.ok()) return engine_config.status();
  return LoadedModel{std::move(*checkpoint), std::move(*tokenizer), *engine_config};
}

}  // namespace fox
