// Safetensors reader: mmap, then validate the whole header before any tensor
// pointer is handed out, so that no malformed file can make us read outside
// the mapping.
#include "models/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <tuple>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "models/bounded_json.h"
#include "nlohmann/json.hpp"

namespace fox {
namespace {

using json = nlohmann::json;

// The format's own limit; a larger "header" is corruption, not a model.
constexpr uint64_t kMaxHeaderBytes = 100u << 20;

absl::Status Invalid(const std::string& path, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
}

absl::Status TensorError(const std::string& path, const std::string& name,
                         const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": tensor '", name, "': ", what));
}

// Parses JSON text, rejecting duplicate top-level keys: with duplicates, one
// tensor entry would silently shadow another.
absl::StatusOr<json> ParseJsonObject(std::string_view text, const std::string& path) {
  std::set<std::string> keys;
  std::string duplicate;
  auto on_event = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1 &&
        !keys.insert(parsed.get<std::string>()).second) {
      duplicate = parsed.get<std::string>();
    }
    return true;
  };
  // Tensor entries are {"dtype", "shape": [...], "data_offsets": [...]}
  // under the top-level object: nothing needs more than a few levels.
  constexpr int kMaxDepth = 8;
  struct TooDeep {};
  auto bounded = [&](int depth, json::parse_event_t event, json& parsed) {
    // `depth` counts the containers already open around this one.
    if ((event == json::parse_event_t::object_start ||
         event == json::parse_event_t::array_start) &&
        depth >= kMaxDepth) {
      throw TooDeep{};
    }
    return on_event(depth, event, parsed);
  };
  json root;
  try {
    root = json::parse(text.begin(), text.end(), bounded);
  } catch (const json::exception& e) {
    return Invalid(path, absl::StrCat("malformed JSON: ", e.what()));
  } catch (const TooDeep&) {
    return Invalid(path, absl::StrCat("the header nests deeper than ", kMaxDepth, " levels"));
  }
  if (!duplicate.empty()) return Invalid(path, absl::StrCat("duplicate key '", duplicate, "'"));
  if (!root.is_object()) return Invalid(path, "not a JSON object");
  return root;
}

// A non-negative JSON integer that fits in int64, or nullopt.
std::optional<int64_t> NonNegativeInt(const json& v) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u <= static_cast<uint64_t>(INT64_MAX)) return static_cast<int64_t>(u);
  } else if (v.is_number_integer() && v.get<int64_t>() >= 0) {
    return v.get<int64_t>();
  }
  return std::nullopt;
}

// Validates one header entry and points it into the data section.
absl::Status ParseEntry(const std::string& path, const std::string& name, const json& entry,
                        const uint8_t* data, int64_t data_size, SafetensorsTensor* out) {
  if (!entry.is_object()) return TensorError(path, name, "entry is not an object");
  auto dtype = entry.find("dtype");
  auto shape = entry.find("shape");
  auto offsets = entry.find("data_offsets");
  if (dtype == entry.end() || !dtype->is_string()) {
    return TensorError(path, name, "missing string 'dtype'");
  }
  if (shape == entry.end() || !shape->is_array()) {
    return TensorError(path, name, "missing array 'shape'");
  }
  if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2) {
    return TensorError(path, name, "'data_offsets' must be [begin, end]");
  }
  out->dtype = dtype->get<std::string>();
  const int element_size = SafetensorsDTypeSize(out->dtype);
  if (element_size == 0) {
    return TensorError(path, name, absl::StrCat("unknown dtype '", out->dtype, "'"));
  }

  int64_t num_bytes = element_size;
  for (const json& dim : *shape) {
    std::optional<int64_t> n = NonNegativeInt(dim);
    if (!n) return TensorError(path, name, absl::StrCat("bad dimension ", DescribeJsonValue(dim), " in shape"));
    out->shape.push_back(*n);
    if (__builtin_mul_overflow(num_bytes, *n, &num_bytes)) {
      return TensorError(path, name, "shape is too large");
    }
  }
  std::optional<int64_t> begin = NonNegativeInt((*offsets)[0]);
  std::optional<int64_t> end = NonNegativeInt((*offsets)[1]);
  if (!begin || !end || *begin > *end) {
    return TensorError(path, name, absl::StrCat("bad data_offsets ", DescribeJsonValue(*offsets)));
  }
  if (*end > data_size) {
    return TensorError(path, name,
                       absl::StrCat("data_offsets ", offsets->dump(), " lie outside the ",
                                    data_size, "-byte data section (truncated file?)"));
  }
  if (*end - *begin != num_bytes) {
    return TensorError(path, name,
                       absl::StrCat("holds ", *end - *begin, " bytes but shape ", shape->dump(),
                                    " of ", out->dtype, " needs ", num_bytes));
  }
  out->data = data + *begin;
  out->num_bytes = num_bytes;
  return absl::OkStatus();
}

}  // namespace

int SafetensorsDTypeSize(std::string_view dtype) {
  static const std::pair<std::string_view, int> kSizes[] = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"F8_E8M0", 1},
      {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},     {"U32", 4},
      {"F32", 4},  {"I64", 8}, {"U64", 8}, {"F64", 8},     {"C64", 8}};
  for (const auto& [name, size] : kSizes) {
    if (name == dtype) return size;
  }
  return 0;
}

const char* SafetensorsDTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "F32";
    case DType::kBF16:
      return "BF16";
    case DType::kF16:
      return "F16";
  }
  return "?";
}

std::optional<DType> DTypeFromSafetensors(std::string_view dtype) {
  if (dtype == "F32") return DType::kF32;
  if (dtype == "BF16") return DType::kBF16;
  if (dtype == "F16") return DType::kF16;
  return std::nullopt;
}

absl::StatusOr<std::shared_ptr<const SafetensorsFile>> SafetensorsFile::Open(
    const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Invalid(path, "not a regular file");
  }
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8) {
    ::close(fd);
    return Invalid(path, absl::StrCat("truncated: ", file_size,
                                      " bytes, shorter than the 8-byte header length"));
  }
  void* mapping = ::mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);  // the mapping keeps the file open
  if (mapping == MAP_FAILED) {
    return absl::InternalError(absl::StrCat(path, ": mmap: ", std::strerror(errno)));
  }
  // Start reading ahead now: the first forward pass touches every page anyway.
  ::madvise(mapping, file_size, MADV_WILLNEED);

  std::shared_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  file->mapping_ = mapping;
  file->mapping_size_ = file_size;

  const uint8_t* base = static_cast<const uint8_t*>(mapping);
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | base[i];  // little-endian
  if (header_size > file_size - 8) {
    return Invalid(path, absl::StrCat("header length ", header_size, " exceeds the file (",
                                      file_size, " bytes)"));
  }
  if (header_size > kMaxHeaderBytes) {
    return Invalid(path, absl::StrCat("header length ", header_size, " is implausible"));
  }
  const std::string_view header(reinterpret_cast<const char*>(base + 8), header_size);
  const uint8_t* data = base + 8 + header_size;
  const int64_t data_size = static_cast<int64_t>(file_size - 8 - header_size);

  absl::StatusOr<json> root = ParseJsonObject(header, path);
  if (!root.ok()) return root.status();
  std::vector<std::tuple<int64_t, int64_t, std::string>> extents;  // begin, end, name
  for (const auto& [name, entry] : root->items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) return Invalid(path, "__metadata__ is not an object");
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string()) {
          return Invalid(path, absl::StrCat("__metadata__ value of '", key, "' is not a string"));
        }
        file->metadata_[key] = value.get<std::string>();
      }
      continue;
    }
    SafetensorsTensor tensor;
    absl::Status status = ParseEntry(path, name, entry, data, data_size, &tensor);
    if (!status.ok()) return status;
    const int64_t begin = tensor.data - data;
    if (tensor.num_bytes > 0) extents.emplace_back(begin, begin + tensor.num_bytes, name);
    file->tensors_.emplace(name, std::move(tensor));
  }
  std::sort(extents.begin(), extents.end());
  for (size_t i = 1; i < extents.size(); ++i) {
    if (std::get<0>(extents[i]) < std::get<1>(extents[i - 1])) {
      return Invalid(path, absl::StrCat("tensors '", std::get<2>(extents[i - 1]), "' and '",
                                        std::get<2>(extents[i]), "' overlap"));
    }
  }
  return std::shared_ptr<const SafetensorsFile>(std::move(file));
}

SafetensorsFile::~SafetensorsFile() {
  if (mapping_ != nullptr) ::munmap(mapping_, mapping_size_);
}

const SafetensorsTensor* SafetensorsFile::Find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

absl::StatusOr<SafetensorsIndex> ParseSafetensorsIndex(const std::string& json_text,
                                                       const std::string& source) {
  absl::StatusOr<json> root = ParseJsonObject(json_text, source);
  if (!root.ok()) return root.status();
  SafetensorsIndex index;
  if (auto meta = root->find("metadata"); meta != root->end() && !meta->is_null()) {
    if (!meta->is_object()) return Invalid(source, "'metadata' is not an object");
    if (auto total = meta->find("total_size"); total != meta->end()) {
      std::optional<int64_t> n = NonNegativeInt(*total);
      if (!n) return Invalid(source, absl::StrCat("bad metadata.total_size ", DescribeJsonValue(*total)));
      index.total_size = *n;
    }
  }
  auto map = root->find("weight_map");
  if (map == root->end() || !map->is_object()) {
    return Invalid(source, "missing object 'weight_map'");
  }
  for (const auto& [name, file] : map->items()) {
    if (!file.is_string()) {
      return Invalid(source, absl::StrCat("weight_map['", name, "'] is not a string"));
    }
    const std::string shard = file.get<std::string>();
    // Shards live beside the index; anything else could point anywhere.
    if (shard.empty() || shard == "." || shard == ".." || shard.find('/') != std::string::npos ||
        shard.find('\0') != std::string::npos) {
      return Invalid(source, absl::StrCat("weight_map['", name, "'] names '", shard,
                                          "', not a file beside the index"));
    }
    index.weight_map[name] = shard;
  }
  return index;
}

}  // namespace fox
