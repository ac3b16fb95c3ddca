#include "models/tokenizer_config.h"

#include <cmath>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "models/bounded_json.h"
#include "models/bpe_files.h"
#include "nlohmann/json.hpp"

namespace fox {
namespace {

using nlohmann::json;

constexpr double kMaxModelMaxLength = 1 << 30;

// bos_token and eos_token are either a string or {"content": string, ...}.
absl::Status ReadTokenName(const json& config, const char* key, const std::string& path,
                           std::string* name) {
  if (!config.contains(key) || config[key].is_null()) return absl::OkStatus();
  const json& value = config[key];
  if (value.is_string()) {
    *name = value.get<std::string>();
  } else if (value.is_object() && value.contains("content") && value["content"].is_string()) {
    *name = value["content"].get<std::string>();
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", key, " is ", DescribeJsonValue(value), ", expected a token string"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TokenizerConfig> ReadTokenizerConfig(const std::string& path) {
  TokenizerConfig result;
  if (!std::filesystem::exists(path)) return result;
  absl::StatusOr<std::string> text = ReadTextFile(path);
  if (!text.ok()) return text.status();
  absl::StatusOr<json> parsed = ParseBoundedJson(*text, path);
  if (!parsed.ok()) return parsed.status();
  const json& config = *parsed;
  if (!config.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a JSON object"));
  }

  if (config.contains("tokenizer_class") && !config["tokenizer_class"].is_null()) {
    const json& name = config["tokenizer_class"];
    if (name == "JSONGPT2Tokenizer") {
      result.json_escaped = true;
    } else if (name != "GPT2Tokenizer" && name != "GPT2TokenizerFast") {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": tokenizer_class ", DescribeJsonValue(name),
          " is not supported; foxserve runs JSONGPT2Tokenizer (the released FoX checkpoints) "
          "and GPT-2 byte-level BPE (GPT2Tokenizer, GPT2TokenizerFast)"));
    }
  }

  if (config.contains("model_max_length") && config["model_max_length"].is_number()) {
    const double length = config["model_max_length"].get<double>();
    if (length >= 1 && length <= kMaxModelMaxLength && std::floor(length) == length) {
      result.model_max_length = static_cast<int>(length);
    }
  }

  absl::Status status = ReadTokenName(config, "bos_token", path, &result.bos_token);
  if (status.ok()) status = ReadTokenName(config, "eos_token", path, &result.eos_token);
  if (!status.ok()) return status;
  return result;
}

}  // namespace fox
