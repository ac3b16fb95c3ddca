// Checkpoint writing: random FoX weights, safetensors files streamed tensor by
// tensor, shards with their index, and config.json.
#include "models/checkpoint_writer.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <regex>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "models/safetensors.h"
#include "nlohmann/json.hpp"

namespace fox {
namespace {

namespace fs = std::filesystem;

// ---- Random numbers: splitmix64 seeds xoshiro256**, Box-Muller for normals.

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

class Xoshiro256 {
 public:
  explicit Xoshiro256(uint64_t seed) {
    for (uint64_t& word : s_) word = SplitMix64(seed);
  }
  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }
  // Uniform in (0, 1]: never 0, so log() is finite.
  double Uniform() { return (static_cast<double>(Next() >> 11) + 1.0) * 0x1.0p-53; }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

// FNV-1a: a stable hash of the tensor name, so each tensor's values depend
// only on (seed, name) and not on the order tensors are generated in.
uint64_t HashName(const std::string& name) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : name) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// Fills `out` with mean + std * N(0, 1). Chunks have their own streams, so the
// values do not depend on how many threads generate them.
void FillNormal(uint64_t seed, float mean, float stddev, std::vector<float>* out) {
  constexpr int64_t kChunk = 1 << 16;
  const int64_t n = static_cast<int64_t>(out->size());
  const int64_t num_chunks = (n + kChunk - 1) / kChunk;
  float* values = out->data();
#pragma omp parallel for schedule(static) if (num_chunks > 4)
  for (int64_t c = 0; c < num_chunks; ++c) {
    uint64_t chunk_seed = seed ^ (0xd1b54a32d192ed03ull * static_cast<uint64_t>(c + 1));
    Xoshiro256 rng(SplitMix64(chunk_seed));
    const int64_t end = std::min(n, (c + 1) * kChunk);
    for (int64_t i = c * kChunk; i < end; i += 2) {
      const double r = std::sqrt(-2.0 * std::log(rng.Uniform()));
      const double theta = 2.0 * std::numbers::pi * rng.Uniform();
      values[i] = static_cast<float>(mean + stddev * r * std::cos(theta));
      if (i + 1 < end) values[i + 1] = static_cast<float>(mean + stddev * r * std::sin(theta));
    }
  }
}

int64_t NumElements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// ---- Safetensors writing.

struct FileEntry {
  std::string name;
  std::vector<int64_t> shape;
};
using EntryProducer = std::function<const HostTensor&(size_t entry)>;

// Writes `entries` to `path` (via a temporary file renamed at the end, so a
// failed write never leaves a plausible-looking checkpoint behind).
absl::Status WriteFile(const std::string& path, const std::vector<FileEntry>& entries,
                       const EntryProducer& produce, DType dtype) {
  nlohmann::ordered_json header;
  header["__metadata__"] = {{"format", "pt"}};
  int64_t offset = 0;
  for (const FileEntry& e : entries) {
    if (e.name.empty() || e.name == "__metadata__") {
      return absl::InvalidArgumentError(absl::StrCat("'", e.name, "' cannot name a tensor"));
    }
    const int64_t bytes = NumElements(e.shape) * DTypeSize(dtype);
    header[e.name] = {{"dtype", SafetensorsDTypeName(dtype)},
                      {"shape", e.shape},
                      {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // tensor data starts 8-byte aligned

  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) {
    return absl::InternalError(absl::StrCat(tmp, ": cannot create: ", std::strerror(errno)));
  }
  uint8_t length[8];
  for (int i = 0; i < 8; ++i) {
    length[i] = static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));
  }
  bool ok = std::fwrite(length, 1, 8, f) == 8 &&
            std::fwrite(text.data(), 1, text.size(), f) == text.size();
  constexpr int64_t kChunk = 1 << 20;
  std::vector<uint8_t> converted(kChunk * DTypeSize(dtype));
  for (size_t i = 0; ok && i < entries.size(); ++i) {
    const HostTensor& t = produce(i);
    const int64_t n = NumElements(entries[i].shape);
    if (t.shape != entries[i].shape || static_cast<int64_t>(t.values.size()) != n) {
      std::fclose(f);
      std::remove(tmp.c_str());
      return absl::InvalidArgumentError(absl::StrCat("tensor '", entries[i].name, "' holds ",
                                                     t.values.size(), " values for its shape of ",
                                                     n));
    }
    for (int64_t first = 0; ok && first < n; first += kChunk) {
      const int64_t m = std::min(kChunk, n - first);
      ConvertFromF32(t.values.data() + first, m, dtype, converted.data());
      const size_t bytes = static_cast<size_t>(m) * DTypeSize(dtype);
      ok = std::fwrite(converted.data(), 1, bytes, f) == bytes;
    }
  }
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) {
    std::remove(tmp.c_str());
    return absl::InternalError(absl::StrCat(path, ": write failed (disk full?)"));
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return absl::InternalError(absl::StrCat(path, ": cannot rename: ", ec.message()));
  return absl::OkStatus();
}

// Assigns consecutive tensors to shards of roughly equal bytes; every shard
// gets at least one tensor.
std::vector<int> AssignShards(const std::vector<FileEntry>& entries, int num_shards) {
  int64_t total = 0;
  for (const FileEntry& e : entries) total += NumElements(e.shape);
  std::vector<int> shard_of(entries.size());
  int64_t cumulative = 0;
  int shard = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    shard_of[i] = shard;
    cumulative += NumElements(entries[i].shape);
    const int64_t tensors_left = static_cast<int64_t>(entries.size() - i - 1);
    const int shards_left = num_shards - 1 - shard;
    const bool full = cumulative * num_shards >= total * (shard + 1);
    if (shards_left > 0 && (full || tensors_left == shards_left)) ++shard;
  }
  return shard_of;
}

// Removes safetensors files a previous write may have left, so that the
// directory never holds two disagreeing sets of weights.
absl::Status RemoveOldWeights(const std::string& dir) {
  static const std::regex kShard(R"(model-\d{5}-of-\d{5}\.safetensors)");
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name == "model.safetensors" || name == "model.safetensors.index.json" ||
        std::regex_match(name, kShard)) {
      fs::remove(entry.path(), ec);
      if (ec) {
        return absl::InternalError(
            absl::StrCat(entry.path().string(), ": cannot remove: ", ec.message()));
      }
    }
  }
  if (ec) return absl::InternalError(absl::StrCat(dir, ": cannot list: ", ec.message()));
  return absl::OkStatus();
}

absl::Status WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat(path, ": write failed"));
  return absl::OkStatus();
}

absl::Status WriteCheckpoint(const std::string& dir, const FoxConfig& config,
                             const std::vector<FileEntry>& entries, const EntryProducer& produce,
                             const WriteOptions& options) {
  if (options.num_shards < 1 || options.num_shards > static_cast<int>(entries.size()) ||
      options.num_shards > 99999) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot split ", entries.size(), " tensors into ", options.num_shards, " shards"));
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat(dir, ": cannot create: ", ec.message()));
  if (absl::Status s = RemoveOldWeights(dir); !s.ok()) return s;

  nlohmann::json config_json = nlohmann::json::parse(FoxConfigToJson(config));
  config_json["torch_dtype"] = DTypeName(options.dtype);
  const std::string config_path = (fs::path(dir) / "config.json").string();
  if (absl::Status s = WriteText(config_path, config_json.dump(2) + "\n"); !s.ok()) return s;
  if (options.num_shards == 1) {
    return WriteFile((fs::path(dir) / "model.safetensors").string(), entries, produce,
                     options.dtype);
  }
  const std::vector<int> shard_of = AssignShards(entries, options.num_shards);
  nlohmann::json weight_map = nlohmann::json::object();
  int64_t total_size = 0;
  for (int shard = 0; shard < options.num_shards; ++shard) {
    char name_buf[64];
    std::snprintf(name_buf, sizeof(name_buf), "model-%05d-of-%05d.safetensors", shard + 1,
                  options.num_shards);
    const std::string name = name_buf;
    std::vector<FileEntry> subset;
    std::vector<size_t> original;
    for (size_t i = 0; i < entries.size(); ++i) {
      if (shard_of[i] != shard) continue;
      subset.push_back(entries[i]);
      original.push_back(i);
      weight_map[entries[i].name] = name;
      total_size += NumElements(entries[i].shape) * DTypeSize(options.dtype);
    }
    const EntryProducer shard_produce = [&](size_t i) -> const HostTensor& {
      return produce(original[i]);
    };
    const std::string path = (fs::path(dir) / name).string();
    if (absl::Status s = WriteFile(path, subset, shard_produce, options.dtype); !s.ok()) return s;
  }
  // The index goes last: a directory with an index has all its shards.
  const nlohmann::json index = {{"metadata", {{"total_size", total_size}}},
                                {"weight_map", weight_map}};
  return WriteText((fs::path(dir) / "model.safetensors.index.json").string(), index.dump(2) + "\n");
}

std::vector<FileEntry> EntriesOf(const TensorMap& tensors) {
  std::vector<FileEntry> entries;
  for (const auto& [name, t] : tensors) entries.push_back({name, t.shape});
  return entries;
}

}  // namespace

HostTensor RandomFoxTensor(const TensorSpec& spec, const RandomInitOptions& options) {
  HostTensor t{spec.shape, std::vector<float>(NumElements(spec.shape))};
  uint64_t state = options.seed ^ HashName(spec.name);
  const uint64_t seed = SplitMix64(state);
  if (absl::EndsWith(spec.name, "fgate_proj.bias")) {
    if (!options.fgate_bias.empty() && options.fgate_bias.size() != t.values.size()) {
      std::fprintf(stderr, "%s:%d: fgate_bias holds %zu values for %zu heads\n", __FILE__, __LINE__,
                   options.fgate_bias.size(), t.values.size());
      std::abort();
    }
    for (size_t h = 0; h < t.values.size(); ++h) {
      t.values[h] = options.fgate_bias.empty() ? options.default_fgate_bias : options.fgate_bias[h];
    }
  } else if (absl::EndsWith(spec.name, "norm.weight")) {
    FillNormal(seed, 1.0f, 0.1f, &t.values);
  } else {
    FillNormal(seed, 0.0f, options.std, &t.values);
  }
  return t;
}

TensorMap RandomFoxTensors(const FoxConfig& config, const RandomInitOptions& options) {
  TensorMap tensors;
  for (const TensorSpec& spec : FoxTensorSpecs(config)) {
    tensors[spec.name] = RandomFoxTensor(spec, options);
  }
  return tensors;
}

absl::Status WriteFoxCheckpoint(const std::string& dir, const FoxConfig& config,
                                const TensorMap& tensors, const WriteOptions& options) {
  // Model order for the tensors the config names, then any others by name.
  std::vector<FileEntry> entries;
  for (const TensorSpec& spec : FoxTensorSpecs(config)) {
    auto it = tensors.find(spec.name);
    if (it != tensors.end()) entries.push_back({spec.name, it->second.shape});
  }
  std::set<std::string> placed;
  for (const FileEntry& e : entries) placed.insert(e.name);
  for (const FileEntry& e : EntriesOf(tensors)) {
    if (placed.count(e.name) == 0) entries.push_back(e);
  }
  return WriteCheckpoint(
      dir, config, entries,
      [&](size_t i) -> const HostTensor& { return tensors.at(entries[i].name); }, options);
}

absl::Status WriteFoxCheckpoint(const std::string& dir, const FoxConfig& config,
                                const TensorProducer& produce, const WriteOptions& options) {
  const std::vector<TensorSpec> specs = FoxTensorSpecs(config);
  std::vector<FileEntry> entries;
  for (const TensorSpec& spec : specs) entries.push_back({spec.name, spec.shape});
  return WriteCheckpoint(
      dir, config, entries, [&](size_t i) -> const HostTensor& { return produce(specs[i]); },
      options);
}

absl::Status WriteSafetensors(const std::string& path, const TensorMap& tensors, DType dtype) {
  const std::vector<FileEntry> entries = EntriesOf(tensors);
  return WriteFile(
      path, entries, [&](size_t i) -> const HostTensor& { return tensors.at(entries[i].name); },
      dtype);
}

}  // namespace fox
