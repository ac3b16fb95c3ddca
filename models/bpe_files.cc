#include "models/bpe_files.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "models/bounded_json.h"
#include "nlohmann/json.hpp"

namespace fox {
namespace {

using nlohmann::json;

absl::StatusOr<json> ParseJsonFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadTextFile(path);
  if (!text.ok()) return text.status();
  return ParseBoundedJson(*text, path);
}

absl::Status ReadVocabObject(const json& vocab, const std::string& where, BpeVocabulary* out) {
  if (!vocab.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": expected an object mapping tokens to ids"));
  }
  out->tokens.reserve(vocab.size());
  for (const auto& [spelling, id] : vocab.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": token '", spelling, "' has id ",
                                                     DescribeJsonValue(id),
                                                     ", expected an integer in [0, 2^31)"));
    }
    out->tokens.emplace_back(spelling, id.get<int32_t>());
  }
  if (out->tokens.empty()) return absl::InvalidArgumentError(absl::StrCat(where, ": empty"));
  return absl::OkStatus();
}

// Splits "left right" at its one space; false when the line is not two tokens.
bool SplitMerge(std::string_view line, std::pair<std::string, std::string>* merge) {
  const size_t space = line.find(' ');
  if (space == 0 || space == std::string_view::npos || space + 1 == line.size() ||
      line.find(' ', space + 1) != std::string_view::npos) {
    return false;
  }
  *merge = {std::string(line.substr(0, space)), std::string(line.substr(space + 1))};
  return true;
}

}  // namespace

absl::StatusOr<std::string> ReadTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("error reading ", path));
  return contents.str();
}

absl::StatusOr<BpeVocabulary> ReadVocabAndMerges(const std::string& vocab_path,
                                                 const std::string& merges_path) {
  BpeVocabulary vocabulary;
  vocabulary.vocab_source = vocab_path;
  vocabulary.merges_source = merges_path;
  absl::StatusOr<json> vocab = ParseJsonFile(vocab_path);
  if (!vocab.ok()) return vocab.status();
  if (absl::Status s = ReadVocabObject(*vocab, vocab_path, &vocabulary); !s.ok()) return s;

  absl::StatusOr<std::string> merges = ReadTextFile(merges_path);
  if (!merges.ok()) return merges.status();
  std::string_view rest = *merges;
  for (int line_number = 1; !rest.empty(); ++line_number) {
    const size_t newline = rest.find('\n');
    std::string_view line = rest.substr(0, newline);
    rest = newline == std::string_view::npos ? std::string_view() : rest.substr(newline + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || (line_number == 1 && line.starts_with("#version"))) continue;
    std::pair<std::string, std::string> merge;
    if (!SplitMerge(line, &merge)) {
      return absl::InvalidArgumentError(absl::StrCat(
          merges_path, ":", line_number, ": expected two tokens separated by a space, got '",
          std::string(line), "'"));
    }
    vocabulary.merges.push_back(std::move(merge));
  }
  return vocabulary;
}

absl::StatusOr<BpeVocabulary> ReadTokenizerJson(const std::string& path) {
  absl::StatusOr<json> file = ParseJsonFile(path);
  if (!file.ok()) return file.status();
  const json& root = *file;
  if (!root.is_object() || !root.contains("model") || !root["model"].is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": no \"model\" object"));
  }
  const json& model = root["model"];
  if (model.contains("type") && model["type"] != "BPE") {
    return absl::InvalidArgumentError(absl::StrCat(path, ": model type ", DescribeJsonValue(model["type"]),
                                                   " is not supported (expected \"BPE\")"));
  }
  BpeVocabulary vocabulary;
  vocabulary.vocab_source = path;
  vocabulary.merges_source = path;
  if (!model.contains("vocab")) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": no model.vocab"));
  }
  absl::Status status =
      ReadVocabObject(model["vocab"], absl::StrCat(path, ": model.vocab"), &vocabulary);
  if (!status.ok()) return status;

  if (!model.contains("merges") || !model["merges"].is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": model.merges is not an array"));
  }
  const json& merges = model["merges"];
  vocabulary.merges.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const json& entry = merges[i];
    std::pair<std::string, std::string> merge;
    bool ok = false;
    if (entry.is_string()) {
      ok = SplitMerge(entry.get<std::string>(), &merge);
    } else if (entry.is_array() && entry.size() == 2 && entry[0].is_string() &&
               entry[1].is_string()) {
      merge = {entry[0].get<std::string>(), entry[1].get<std::string>()};
      ok = !merge.first.empty() && !merge.second.empty();
    }
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": model.merges[", i, "] is ", DescribeJsonValue(entry),
                       ", expected \"left right\" or [\"left\", \"right\"]"));
    }
    vocabulary.merges.push_back(std::move(merge));
  }

  // Added tokens extend the vocabulary; like every special token, they are
  // never matched in text (see Tokenizer::Encode).
  if (root.contains("added_tokens") && root["added_tokens"].is_array()) {
    for (const json& added : root["added_tokens"]) {
      if (!added.is_object() || !added.contains("id") || !added["id"].is_number_integer() ||
          !added.contains("content") || !added["content"].is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": malformed added_tokens entry ", DescribeJsonValue(added)));
      }
      const int32_t id = added["id"].get<int32_t>();
      vocabulary.tokens.emplace_back(added["content"].get<std::string>(), id);
      if (added.value("special", false)) vocabulary.special_ids.push_back(id);
    }
  }
  return vocabulary;
}

}  // namespace fox
