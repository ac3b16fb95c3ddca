// config.json (models/config.h): ParseFoxConfig on fuzzed text.
// Properties of an accepted config: positive sizes with
// num_heads x head_dim == hidden_size; NumParameters() positive (UBSan
// catches an overflow on the way); FoxConfigToJson writes it back as a
// config that parses to the same FoxConfig. A refused one is InvalidArgument.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_support.h"
#include "models/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using fox::fuzz::Escaped;
  const std::string text(reinterpret_cast<const char*>(data), size);
  const absl::StatusOr<fox::FoxConfig> config = fox::ParseFoxConfig(text, "config.json");
  if (!config.ok()) {
    FOX_FUZZ_CHECK(config.status().code() == absl::StatusCode::kInvalidArgument,
                   absl::StrCat(Escaped(text), " -> ", config.status().ToString()));
    return 0;
  }
  const fox::FoxConfig& c = *config;
  FOX_FUZZ_CHECK(c.vocab_size > 0 && c.hidden_size > 0 && c.num_layers > 0 && c.num_heads > 0 &&
                     c.head_dim > 0 && c.intermediate_size > 0,
                 Escaped(text));
  FOX_FUZZ_CHECK(static_cast<int64_t>(c.num_heads) * c.head_dim == c.hidden_size, Escaped(text));
  FOX_FUZZ_CHECK(c.NumParameters() > 0, Escaped(text));
  const std::string written = fox::FoxConfigToJson(c);
  const absl::StatusOr<fox::FoxConfig> again = fox::ParseFoxConfig(written, "written");
  FOX_FUZZ_CHECK(again.ok(), absl::StrCat(Escaped(text), " wrote ", written, " -> ",
                                          again.status().ToString()));
  FOX_FUZZ_CHECK(*again == c, absl::StrCat(Escaped(text), " wrote ", written));
  return 0;
}
