#include "models/tokenizer_files.h"

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace fox {
namespace fs = std::filesystem;

absl::Status WriteTokenizerFiles(const std::string& dir, const TokenizerFilesOptions& options) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  const std::pair<const char*, const char*> copies[] = {{"encoder.json", "vocab.json"},
                                                        {"vocab.bpe", "merges.txt"}};
  for (const auto& [from, to] : copies) {
    const fs::path src = fs::path(options.gpt2_dir) / from;
    fs::copy_file(src, fs::path(dir) / to, fs::copy_options::overwrite_existing, ec);
    if (ec) {
      return absl::NotFoundError(absl::StrCat("cannot copy ", src.string(), ": ", ec.message()));
    }
  }
  nlohmann::ordered_json config = {
      {"tokenizer_class", options.json_escaped ? "JSONGPT2Tokenizer" : "GPT2Tokenizer"},
      {"model_max_length", options.model_max_length},
      {"bos_token", "<|endoftext|>"},
      {"eos_token", "<|endoftext|>"},
      {"unk_token", "<|endoftext|>"},
      {"add_prefix_space", false},
  };
  const std::string path = (fs::path(dir) / "tokenizer_config.json").string();
  std::ofstream out(path, std::ios::trunc);
  out << config.dump(2) << "\n";
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

}  // namespace fox
