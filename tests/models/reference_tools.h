// The independent references the tokenizer tests compare against, run as
// subprocesses: Python's json module (the escaping LongCrawl64 used, and
// UTF-8 decoding with replacement) and the JavaScript GPT-2 encoder of the
// npm package gpt-3-encoder (node_modules/, installed by scripts/setup.sh).
// A missing python3, node or package is an error, never a skip.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "tests/support/subprocess.h"

namespace fox::testing {

inline std::string Gpt2PackageDir() {
  return std::string(FOX_SOURCE_DIR) + "/node_modules/gpt-3-encoder";
}

// Runs `argv` with the JSON of `input` on stdin and parses its stdout as JSON.
inline absl::StatusOr<nlohmann::json> RunJsonFilter(const std::vector<std::string>& argv,
                                                    const nlohmann::json& input) {
  const ProcessResult result = RunProcess(argv, input.dump());
  if (result.exit_code != 0) {
    return absl::InternalError(absl::StrCat(argv[0], " ", argv.size() > 1 ? argv[1] : "",
                                            " exited with ", result.exit_code, ": ", result.err));
  }
  nlohmann::json output = nlohmann::json::parse(result.out, nullptr, false);
  if (output.is_discarded()) {
    return absl::InternalError(
        absl::StrCat(argv[0], " wrote invalid JSON: ", result.out.substr(0, 200)));
  }
  return output;
}

// Runs a Python program that reads JSON from stdin and prints JSON (ASCII,
// json.dumps's default, so any string survives the trip).
inline absl::StatusOr<nlohmann::json> RunPython(const std::string& program,
                                                const nlohmann::json& input) {
  const std::string prelude =
      "import json, sys\n"
      "data = json.loads(sys.stdin.buffer.read().decode('utf-8'))\n";
  return RunJsonFilter({"python3", "-c", prelude + program}, input);
}

// json.dumps(s)[1:-1] of each text.
inline absl::StatusOr<std::vector<std::string>> PythonJsonEscape(
    const std::vector<std::string>& texts) {
  absl::StatusOr<nlohmann::json> out =
      RunPython("print(json.dumps([json.dumps(s)[1:-1] for s in data]))", texts);
  if (!out.ok()) return out.status();
  return out->get<std::vector<std::string>>();
}

// The node program in tests/js/`script` with the package dir as argument.
inline absl::StatusOr<nlohmann::json> RunNodeHelper(const std::string& script,
                                                    const nlohmann::json& input) {
  const std::string node = "/usr/bin/node";
  if (!std::filesystem::exists(node)) {
    return absl::NotFoundError("node is not at /usr/bin/node: run scripts/setup.sh");
  }
  if (!std::filesystem::exists(Gpt2PackageDir() + "/Encoder.js")) {
    return absl::NotFoundError(
        absl::StrCat(Gpt2PackageDir(), "/Encoder.js is missing: run scripts/setup.sh"));
  }
  return RunJsonFilter(
      {node, std::string(FOX_SOURCE_DIR) + "/tests/js/" + script, Gpt2PackageDir()}, input);
}

// gpt-3-encoder's encode() of each text.
inline absl::StatusOr<std::vector<std::vector<int32_t>>> JsGpt2Encode(
    const std::vector<std::string>& texts) {
  absl::StatusOr<nlohmann::json> out = RunNodeHelper("gpt2_encode.js", texts);
  if (!out.ok()) return out.status();
  return out->get<std::vector<std::vector<int32_t>>>();
}

// gpt-3-encoder's pre-tokenizer split of each text.
inline absl::StatusOr<std::vector<std::vector<std::string>>> JsGpt2Split(
    const std::vector<std::string>& texts) {
  absl::StatusOr<nlohmann::json> out = RunNodeHelper("gpt2_split.js", texts);
  if (!out.ok()) return out.status();
  return out->get<std::vector<std::vector<std::string>>>();
}

}  // namespace fox::testing
