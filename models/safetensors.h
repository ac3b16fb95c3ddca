// Reading the safetensors format: a memory-mapped file whose header is
// validated before any tensor byte is handed out, and the shard index
// (model.safetensors.index.json) of sharded checkpoints.
//
// File layout:
//   [u64 little-endian N][N bytes of JSON header][data section]
//   header: {"__metadata__": {str: str}?,
//            name: {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...}
//   offsets are relative to the start of the data section.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/dtype.h"

namespace fox {

// One tensor of a safetensors file. `data` points into the file's mapping and
// stays valid while the SafetensorsFile lives.
struct SafetensorsTensor {
  std::string dtype;  // as the header spells it: "F32", "BF16", "I64", ...
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  int64_t num_bytes = 0;
};

// A validated, read-only, memory-mapped safetensors file. Open() guarantees
// that every tensor lies inside the file, has exactly shape x dtype bytes and
// overlaps no other. Immutable after Open, so it may be shared across threads.
class SafetensorsFile {
 public:
  static absl::StatusOr<std::shared_ptr<const SafetensorsFile>> Open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  // nullptr when the file holds no tensor of that name.
  const SafetensorsTensor* Find(const std::string& name) const;
  const std::map<std::string, SafetensorsTensor>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  SafetensorsFile() = default;

  std::string path_;
  void* mapping_ = nullptr;
  size_t mapping_size_ = 0;
  std::map<std::string, SafetensorsTensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Bytes per element of a dtype the safetensors format defines, or 0 for a name
// it does not define.
int SafetensorsDTypeSize(std::string_view dtype);
// The header spelling of one of our dtypes ("F32", "BF16", "F16"), and back.
const char* SafetensorsDTypeName(DType dtype);
std::optional<DType> DTypeFromSafetensors(std::string_view dtype);

// model.safetensors.index.json: which shard file holds each tensor.
struct SafetensorsIndex {
  int64_t total_size = -1;                        // metadata.total_size, -1 when absent
  std::map<std::string, std::string> weight_map;  // tensor name -> shard file name
};

// Parses and validates an index; shard names must be plain file names in the
// checkpoint directory. `source` names the file in errors.
absl::StatusOr<SafetensorsIndex> ParseSafetensorsIndex(const std::string& json_text,
                                                       const std::string& source);

}  // namespace fox
