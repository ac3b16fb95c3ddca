// `foxserve generate` and `foxserve tokenize` as a user runs them: the built
// binary on the embedded default model.
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/subprocess.h"

namespace fox {
namespace {

using testing::RunProcess;

const std::string kFoxserve = std::string(FOX_BINARY_DIR) + "/bin/foxserve";

nlohmann::json GenerateJson(const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {kFoxserve, "generate", "--json"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  const auto r = RunProcess(argv);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return nlohmann::json::parse(r.out);
}

TEST(GenerateCliTest, GreedyJsonIsDeterministicAndConsistent) {
  const auto a = GenerateJson({"--prompt", "The forget gate decides", "--max-tokens", "12",
                               "--temperature", "0", "--acp", "off"});
  const auto b = GenerateJson({"--prompt", "The forget gate decides", "--max-tokens", "12",
                               "--temperature", "0", "--acp", "off"});
  EXPECT_EQ(a["token_ids"], b["token_ids"]);
  ASSERT_EQ(a["token_ids"].size(), a["logprobs"].size());
  EXPECT_EQ(a["finish_reason"], a["token_ids"].size() == 12u ? "length" : "stop");
  for (const auto& lp : a["logprobs"]) {
    EXPECT_LE(lp.get<double>(), 0.0);
    EXPECT_GT(lp.get<double>(), -30.0);
  }
  // The text is the decoding of the ids.
  const auto decoded = RunProcess({kFoxserve, "tokenize", "--decode"}, a["token_ids"].dump());
  ASSERT_EQ(decoded.exit_code, 0) << decoded.err;
  EXPECT_EQ(decoded.out, a["text"].get<std::string>());
}

TEST(GenerateCliTest, PromptIdsMatchTextPromptWithBos) {
  const auto ids = RunProcess({kFoxserve, "tokenize"}, "The forget gate decides");
  ASSERT_EQ(ids.exit_code, 0) << ids.err;
  const auto id_list = nlohmann::json::parse(ids.out);
  ASSERT_GE(id_list.size(), 2u);
  EXPECT_EQ(id_list[0], 50256) << "text prompts start with BOS";
  std::string csv;
  for (const auto& id : id_list) csv += (csv.empty() ? "" : ",") + std::to_string(id.get<int>());
  const auto from_text = GenerateJson({"--prompt", "The forget gate decides", "--max-tokens", "6",
                                       "--temperature", "0"});
  const auto from_ids =
      GenerateJson({"--prompt-ids", csv, "--max-tokens", "6", "--temperature", "0"});
  EXPECT_EQ(from_text["token_ids"], from_ids["token_ids"]);
  EXPECT_EQ(from_text["prompt_tokens"], id_list.size());
}

TEST(GenerateCliTest, SeededSamplingRepeatsAndSeedsDiffer) {
  auto run = [](const std::string& seed) {
    return GenerateJson({"--prompt-ids", "50256,464,2068", "--max-tokens", "16", "--temperature",
                         "1.0", "--seed", seed})["token_ids"];
  };
  EXPECT_EQ(run("7"), run("7"));
  EXPECT_NE(run("7"), run("8"));
}

TEST(GenerateCliTest, BfloatWeightsAndKvRun) {
  const auto out = GenerateJson({"--prompt", "Hello", "--max-tokens", "4", "--dtype", "bfloat16",
                                 "--kv-dtype", "bfloat16", "--temperature", "0"});
  EXPECT_EQ(out["token_ids"].size(), 4u);
}

TEST(GenerateCliTest, BadInputFailsWithAClearMessage) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--prompt-ids", "1,x,3"}, "'x' is not a token id"},
      {{"--prompt-ids", "1,99999"}, "outside the vocabulary"},
      {{"--prompt", "a", "--prompt-ids", "1"}, "exactly one of --prompt, --prompt-ids and --prompts-file"},
      {{"--prompt", "a", "--max-tokens", "0"}, "max_tokens"},
      {{"--prompt", "a", "--dtype", "float8"}, "--dtype: unsupported dtype 'float8'"},
      {{"--prompt", "a", "--bogus"}, "unknown flag --bogus"},
      {{"--prompt", "a", "--model", "/nonexistent/model"}, "/nonexistent/model"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> argv = {kFoxserve, "generate"};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    const auto r = RunProcess(argv);
    EXPECT_NE(r.exit_code, 0) << c.message;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << "stderr was: " << r.err;
  }
  const auto r = RunProcess({kFoxserve, "frobnicate"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("unknown command 'frobnicate'"), std::string::npos);
}

}  // namespace
}  // namespace fox
