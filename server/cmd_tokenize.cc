// `foxserve tokenize`: text on stdin -> JSON array of token ids on stdout, or
// with --decode a JSON array of ids -> text. A debugging aid that runs the
// exact tokenizer the server uses.
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "models/bounded_json.h"
#include "models/tokenizer.h"
#include "nlohmann/json.hpp"
#include "server/cli_flags.h"
#include "server/commands.h"
#include "server/model_paths.h"

namespace fox {
namespace {

absl::StatusOr<std::vector<int32_t>> ParseIds(const std::string& text) {
  const absl::StatusOr<nlohmann::json> bounded = ParseBoundedJson(text, "--decode's input");
  if (!bounded.ok()) return bounded.status();
  const nlohmann::json& parsed = *bounded;
  if (!parsed.is_array()) {
    return absl::InvalidArgumentError("--decode expects a JSON array of token ids on stdin");
  }
  std::vector<int32_t> ids;
  ids.reserve(parsed.size());
  for (size_t i = 0; i < parsed.size(); ++i) {
    const nlohmann::json& id = parsed[i];
    if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
        id.get<int64_t>() > std::numeric_limits<int32_t>::max()) {
      return absl::InvalidArgumentError(
          absl::StrCat("element ", i, " is ", DescribeJsonValue(id), ", expected a token id"));
    }
    ids.push_back(id.get<int32_t>());
  }
  return ids;
}

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "foxserve tokenize: %s\n", std::string(status.message()).c_str());
  return 1;
}

}  // namespace

int RunTokenizeCommand(int argc, char** argv) {
  std::string model_dir = DefaultModelDir();
  bool decode = false;
  bool no_bos = false;
  FlagSet flags("tokenize");
  flags.Add("model", &model_dir, "checkpoint directory holding the tokenizer files");
  flags.Add("decode", &decode, "read a JSON array of ids, write the text");
  flags.Add("no-bos", &no_bos, "do not prepend the BOS token when encoding");
  for (int i = 2; i < argc; ++i) {
    if (std::string(argv[i]) == "--help") {
      std::fputs(flags.Usage().c_str(), stdout);
      return 0;
    }
  }
  if (absl::Status status = flags.Parse(argc, argv, 2); !status.ok()) {
    std::fprintf(stderr, "%s\n%s", std::string(status.message()).c_str(), flags.Usage().c_str());
    return 2;
  }

  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::Load(model_dir);
  if (!tokenizer.ok()) return Fail(tokenizer.status());
  const std::string input(std::istreambuf_iterator<char>(std::cin), {});

  if (decode) {
    absl::StatusOr<std::vector<int32_t>> ids = ParseIds(input);
    if (!ids.ok()) return Fail(ids.status());
    absl::StatusOr<std::string> text = (*tokenizer)->Decode(*ids);
    if (!text.ok()) return Fail(text.status());
    std::fwrite(text->data(), 1, text->size(), stdout);
  } else {
    absl::StatusOr<std::vector<int32_t>> ids = (*tokenizer)->Encode(input, !no_bos);
    if (!ids.ok()) return Fail(ids.status());
    const std::string json = nlohmann::json(*ids).dump() + "\n";
    std::fwrite(json.data(), 1, json.size(), stdout);
  }
  return std::fflush(stdout) == 0 ? 0 : Fail(absl::DataLossError("cannot write to stdout"));
}

}  // namespace fox
