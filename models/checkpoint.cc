// Checkpoint loading: find the safetensors file(s), check every tensor against
// the layout the config implies, then bind each one into FoxWeights, zero-copy
// where the file already holds what the server computes with.
#include "models/checkpoint.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "models/bounded_json.h"
#include "models/safetensors.h"
#include "nlohmann/json.hpp"

namespace fox {
namespace {

namespace fs = std::filesystem;

// Every tensor of the checkpoint, with the file it lives in.
struct TensorFiles {
  std::string listing;  // the file that names the tensors: model.safetensors or the index
  std::vector<std::shared_ptr<const SafetensorsFile>> files;
  struct Entry {
    const SafetensorsTensor* tensor;
    const SafetensorsFile* file;
  };
  std::map<std::string, Entry> tensors;
};

absl::StatusOr<std::string> ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::InternalError(absl::StrCat(path, ": read error"));
  return text.str();
}

absl::StatusOr<TensorFiles> OpenSharded(const std::string& dir, const std::string& index_path) {
  absl::StatusOr<std::string> text = ReadText(index_path);
  if (!text.ok()) return text.status();
  absl::StatusOr<SafetensorsIndex> index = ParseSafetensorsIndex(*text, index_path);
  if (!index.ok()) return index.status();
  std::map<std::string, std::vector<std::string>> by_shard;
  for (const auto& [name, shard] : index->weight_map) by_shard[shard].push_back(name);

  TensorFiles out{index_path, {}, {}};
  for (const auto& [shard, names] : by_shard) {
    const std::string path = (fs::path(dir) / shard).string();
    if (!fs::exists(path)) {
      return absl::NotFoundError(absl::StrCat(index_path, ": shard '", shard, "' (holding tensor '",
                                              names.front(), "') is missing: ", path));
    }
    absl::StatusOr<std::shared_ptr<const SafetensorsFile>> file = SafetensorsFile::Open(path);
    if (!file.ok()) return file.status();
    for (const std::string& name : names) {
      const SafetensorsTensor* tensor = (*file)->Find(name);
      if (tensor == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(path, ": tensor '", name, "' is listed in ",
                                                       index_path, " but not in this shard"));
      }
      out.tensors[name] = {tensor, file->get()};
    }
    // A tensor the index does not list would be invisible to every other
    // loader; refusing it keeps the checkpoint unambiguous.
    for (const auto& [name, tensor] : (*file)->tensors()) {
      auto listed = index->weight_map.find(name);
      if (listed == index->weight_map.end() || listed->second != shard) {
        return absl::InvalidArgumentError(absl::StrCat(
            path, ": tensor '", name, "' is in this shard but not listed for it in ", index_path));
      }
    }
    out.files.push_back(*std::move(file));
  }
  return out;
}

absl::StatusOr<TensorFiles> OpenTensorFiles(const std::string& dir) {
  const std::string single = (fs::path(dir) / "model.safetensors").string();
  const std::string index = (fs::path(dir) / "model.safetensors.index.json").string();
  if (fs::exists(single)) {
    absl::StatusOr<std::shared_ptr<const SafetensorsFile>> file = SafetensorsFile::Open(single);
    if (!file.ok()) return file.status();
    TensorFiles out{single, {}, {}};
    for (const auto& [name, tensor] : (*file)->tensors()) {
      out.tensors[name] = {&tensor, file->get()};
    }
    out.files.push_back(*std::move(file));
    return out;
  }
  if (fs::exists(index)) return OpenSharded(dir, index);
  return absl::NotFoundError(
      absl::StrCat(dir, ": no model.safetensors or model.safetensors.index.json"));
}

std::string ShapeText(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// Checks names, dtypes and shapes of every tensor before anything is bound,
// so a bad checkpoint costs no conversion work.
absl::Status CheckTensors(const TensorFiles& files, const std::vector<TensorSpec>& specs) {
  std::map<std::string, const TensorSpec*> expected;
  for (const TensorSpec& spec : specs) expected[spec.name] = &spec;
  for (const auto& [name, entry] : files.tensors) {
    if (expected.count(name) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(entry.file->path(), ": unexpected tensor '",
                                                     name, "' (config.json does not use it)"));
    }
  }
  for (const TensorSpec& spec : specs) {
    auto it = files.tensors.find(spec.name);
    if (it == files.tensors.end()) {
      return absl::InvalidArgumentError(absl::StrCat(files.listing, ": missing tensor '", spec.name,
                                                     "' ", ShapeText(spec.shape),
                                                     " (config.json needs it)"));
    }
    const SafetensorsTensor& t = *it->second.tensor;
    const std::string& path = it->second.file->path();
    if (!DTypeFromSafetensors(t.dtype)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": tensor '", spec.name,
                                                     "': unsupported dtype ", t.dtype,
                                                     " (only F32, BF16 and F16 are accepted)"));
    }
    if (t.shape != spec.shape) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": tensor '", spec.name, "': shape ",
                                                     ShapeText(t.shape), ", expected ",
                                                     ShapeText(spec.shape)));
    }
  }
  return absl::OkStatus();
}

// Converts n elements between dtypes. The source may sit at any byte offset
// in the mapping; misaligned chunks are first copied to an aligned buffer.
void ConvertElements(const uint8_t* src, DType from, int64_t n, uint8_t* dst, DType to) {
  if (from == to) {
    std::memcpy(dst, src, static_cast<size_t>(n) * DTypeSize(from));
    return;
  }
  const bool aligned = reinterpret_cast<uintptr_t>(src) % DTypeSize(from) == 0;
  constexpr int64_t kChunk = 4096;
  const int64_t num_chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (num_chunks > 4)
  for (int64_t c = 0; c < num_chunks; ++c) {
    float raw[kChunk];  // 4 bytes per element covers every source dtype
    float staged[kChunk];
    const int64_t first = c * kChunk;
    const int64_t m = std::min(kChunk, n - first);
    const void* chunk = src + first * DTypeSize(from);
    if (!aligned) chunk = std::memcpy(raw, chunk, static_cast<size_t>(m) * DTypeSize(from));
    uint8_t* out = dst + first * DTypeSize(to);
    if (to == DType::kF32) {
      ConvertToF32(chunk, from, m, reinterpret_cast<float*>(out));
    } else if (from == DType::kF32) {
      ConvertFromF32(static_cast<const float*>(chunk), m, to, out);
    } else {
      ConvertToF32(chunk, from, m, staged);
      ConvertFromF32(staged, m, to, out);
    }
  }
}

// Binds one tensor: a pointer into the mapping when it already has the dtype
// we serve and is aligned for it, otherwise a converted owned copy.
absl::StatusOr<Tensor> Materialize(const SafetensorsTensor& src, const std::vector<int64_t>& shape,
                                   DType to, std::vector<std::shared_ptr<const void>>* storage) {
  const DType from = *DTypeFromSafetensors(src.dtype);
  Tensor out{nullptr, to, shape};
  const int64_t n = src.num_bytes / DTypeSize(from);
  if (from == to && reinterpret_cast<uintptr_t>(src.data) % DTypeSize(to) == 0) {
    out.data = src.data;
    return out;
  }
  // 64-byte alignment suits every vector width the kernels use.
  const size_t bytes = (static_cast<size_t>(n) * DTypeSize(to) + 63) / 64 * 64;
  void* owned = std::aligned_alloc(64, std::max<size_t>(bytes, 64));
  if (owned == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat("cannot allocate ", bytes, " bytes"));
  }
  storage->push_back(std::shared_ptr<const void>(owned, std::free));
  ConvertElements(src.data, from, n, static_cast<uint8_t*>(owned), to);
  out.data = owned;
  return out;
}

// Older configs may omit qk_norm_share_param_across_head; the authors' code
// then defaults to per-head weights, but checkpoints trained before the flag
// existed hold shared [d] weights. The tensor shape settles it.
void SettleQkNormSharing(const std::string& config_text, const TensorFiles& files,
                         FoxConfig* config) {
  if (!config->qk_norm) return;
  // The text parsed once already (ParseFoxConfig), within the same limits.
  const absl::StatusOr<nlohmann::json> parsed = ParseBoundedJson(config_text, "config.json");
  if (!parsed.ok()) return;
  const nlohmann::json& root = *parsed;
  if (root.is_object() && root.contains("qk_norm_share_param_across_head") &&
      !root["qk_norm_share_param_across_head"].is_null()) {
    return;
  }
  auto it = files.tensors.find("model.layers.0.attn.q_norm.weight");
  if (it != files.tensors.end()) {
    config->qk_norm_shared = it->second.tensor->shape == std::vector<int64_t>{config->head_dim};
  }
}

}  // namespace

absl::StatusOr<Checkpoint> LoadCheckpoint(const std::string& dir,
                                          const CheckpointOptions& options) {
  if (options.dtype == DType::kF16) {
    return absl::InvalidArgumentError("weights are served in float32 or bfloat16, not float16");
  }
  const std::string config_path = (fs::path(dir) / "config.json").string();
  absl::StatusOr<std::string> config_text = ReadText(config_path);
  if (!config_text.ok()) return config_text.status();
  absl::StatusOr<FoxConfig> config = ParseFoxConfig(*config_text, config_path);
  if (!config.ok()) return config.status();
  absl::StatusOr<TensorFiles> files = OpenTensorFiles(dir);
  if (!files.ok()) return files.status();
  SettleQkNormSharing(*config_text, *files, &*config);

  const std::vector<TensorSpec> specs = FoxTensorSpecs(*config);
  if (absl::Status status = CheckTensors(*files, specs); !status.ok()) return status;

  Checkpoint ckpt;
  ckpt.dir = dir;
  ckpt.config = *config;
  ckpt.file_dtype = *DTypeFromSafetensors(files->tensors.at(specs.front().name).tensor->dtype);
  const DType serve =
      options.dtype.value_or(ckpt.file_dtype == DType::kBF16 ? DType::kBF16 : DType::kF32);
  FoxWeights& w = ckpt.weights;
  w.dtype = serve;
  w.layers.resize(config->num_layers);
  std::set<const SafetensorsFile*> viewed;  // files some tensor points into
  for (const TensorSpec& spec : specs) {
    const TensorFiles::Entry& entry = files->tensors.at(spec.name);
    absl::StatusOr<Tensor> tensor =
        Materialize(*entry.tensor, spec.shape, spec.is_matrix ? serve : DType::kF32, &w.storage);
    if (!tensor.ok()) {
      return absl::Status(tensor.status().code(),
                          absl::StrCat(entry.file->path(), ": tensor '", spec.name,
                                       "': ", tensor.status().message()));
    }
    if (tensor->data == entry.tensor->data) viewed.insert(entry.file);
    BoundTensor(spec, w) = *std::move(tensor);
  }
  // A file every tensor was converted out of need not stay mapped.
  for (const auto& file : files->files) {
    if (viewed.count(file.get()) > 0) w.storage.push_back(file);
  }
  return ckpt;
}

}  // namespace fox
