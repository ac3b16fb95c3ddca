// The safetensors reader (models/safetensors.h): SafetensorsFile::Open on a
// fuzzed file, and ParseSafetensorsIndex. Open only takes a path (it maps the
// file), so each input is written to a scratch file under /dev/shm first.
// The first input byte picks the layout: bit 0 clear, the rest is the whole
// file as it stands (the length field fuzzed too); set, the rest is
// "<header JSON>\0<data>" and the target writes [u64 length][header][data],
// so that mutations of the JSON keep a consistent length. Bit 1: the header
// text also goes to ParseSafetensorsIndex.
// Properties of an opened file, checked against the file's bytes with a
// JSON parse of our own: every tensor's bytes are exactly its data_offsets
// range of the data section, dtype size x shape long; no two overlap;
// metadata holds exactly the header's __metadata__ strings. An accepted
// index names only plain file names.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_support.h"
#include "models/safetensors.h"
#include "nlohmann/json.hpp"

namespace fox::fuzz {
namespace {

using nlohmann::json;

std::string Framed(std::string_view rest) {
  const size_t nul = rest.find('\0');
  const std::string_view header = rest.substr(0, nul);
  const std::string_view data = nul == std::string_view::npos ? "" : rest.substr(nul + 1);
  std::string file(8, '\0');
  for (int i = 0; i < 8; ++i) file[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  file.append(header);
  file.append(data);
  return file;
}

void CheckOpened(const SafetensorsFile& file, std::string_view bytes) {
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = header_size << 8 | static_cast<uint8_t>(bytes[i]);
  FOX_FUZZ_CHECK(header_size <= bytes.size() - 8, absl::StrCat(header_size));
  const std::string_view data = bytes.substr(8 + header_size);
  const json header = json::parse(bytes.substr(8, header_size), nullptr, false);
  FOX_FUZZ_CHECK(header.is_object(), Escaped(bytes.substr(8, header_size)));

  std::vector<std::pair<uint64_t, uint64_t>> extents;
  for (const auto& [name, tensor] : file.tensors()) {
    FOX_FUZZ_CHECK(name != "__metadata__" && header.contains(name), Escaped(name));
    const json& offsets = header[name]["data_offsets"];
    const uint64_t begin = offsets[0].get<uint64_t>();
    const uint64_t end = offsets[1].get<uint64_t>();
    FOX_FUZZ_CHECK(begin <= end && end <= data.size(), Escaped(name));
    FOX_FUZZ_CHECK(static_cast<uint64_t>(tensor.num_bytes) == end - begin, Escaped(name));
    uint64_t expected_bytes = SafetensorsDTypeSize(tensor.dtype);
    for (const int64_t dim : tensor.shape) expected_bytes *= static_cast<uint64_t>(dim);
    FOX_FUZZ_CHECK(tensor.num_bytes == 0 || expected_bytes == end - begin, Escaped(name));
    if (tensor.num_bytes > 0) {
      FOX_FUZZ_CHECK(std::memcmp(tensor.data, data.data() + begin, tensor.num_bytes) == 0,
                     Escaped(name));
      extents.emplace_back(begin, end);
    }
  }
  std::sort(extents.begin(), extents.end());
  for (size_t i = 1; i < extents.size(); ++i) {
    FOX_FUZZ_CHECK(extents[i].first >= extents[i - 1].second, "overlapping tensors accepted");
  }
  size_t num_metadata = 0;
  if (const auto meta = header.find("__metadata__"); meta != header.end()) {
    num_metadata = meta->size();
    for (const auto& [key, value] : meta->items()) {
      const auto it = file.metadata().find(key);
      FOX_FUZZ_CHECK(it != file.metadata().end() && it->second == value.get<std::string>(),
                     Escaped(key));
    }
  }
  FOX_FUZZ_CHECK(file.metadata().size() == num_metadata, "");
  FOX_FUZZ_CHECK(file.tensors().size() + (header.contains("__metadata__") ? 1 : 0) ==
                     header.size(),
                 "a header entry was dropped");
}

void CheckIndex(const std::string& text) {
  const absl::StatusOr<SafetensorsIndex> index =
      ParseSafetensorsIndex(text, "model.safetensors.index.json");
  if (!index.ok()) {
    FOX_FUZZ_CHECK(index.status().code() == absl::StatusCode::kInvalidArgument,
                   index.status().ToString());
    return;
  }
  for (const auto& [name, shard] : index->weight_map) {
    FOX_FUZZ_CHECK(!shard.empty() && shard != "." && shard != ".." &&
                       shard.find_first_of(std::string("/\0", 2)) == std::string::npos,
                   Escaped(shard));
  }
}

}  // namespace
}  // namespace fox::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::string bytes = (data[0] & 1) != 0 ? fox::fuzz::Framed(rest) : std::string(rest);
  const absl::StatusOr<std::shared_ptr<const fox::SafetensorsFile>> file =
      fox::SafetensorsFile::Open(fox::fuzz::WriteScratchFile(bytes));
  if (file.ok()) {
    fox::fuzz::CheckOpened(**file, bytes);
  } else {
    FOX_FUZZ_CHECK(file.status().code() == absl::StatusCode::kInvalidArgument,
                   file.status().ToString());
  }
  if ((data[0] & 2) != 0) {
    fox::fuzz::CheckIndex(bytes.size() >= 8 ? bytes.substr(8) : bytes);
  }
  return 0;
}
