// `foxserve generate` and `foxserve tokenize` as a user runs them: the built
// binary on the embedded default model.
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"

namespace fox {
namespace {

using testing::RunProcess;
using testing::TempDir;
using testing::WriteFileOrDie;

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

// Many prompts through the engine at once give what each gives alone. The
// batch's matmuls may sum in another order than a lone prompt's, so ids must
// agree up to the first near-tie: there both runs' chosen logprobs are the
// top two within 1e-4 of each other, and comparison stops.
TEST(GenerateCliTest, PromptsFileMatchesPromptsRunAlone) {
  const std::vector<std::string> prompts = {
      "The forget gate decides", "Once upon a time there was a cache",
      "Hello", "Keys decay at a data-dependent rate, and blocks return to the pool.",
      "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20", "A"};
  TempDir dir;
  std::string text;
  for (const std::string& p : prompts) text += p + "\n\n";  // blank lines are skipped
  WriteFileOrDie(dir.File("prompts.txt"), text);
  const std::vector<std::string> common = {"--max-tokens", "20", "--temperature", "0",
                                           "--max-num-batched-tokens", "16"};
  std::vector<std::string> argv = {kFoxserve, "generate", "--json", "--prompts-file",
                                   dir.File("prompts.txt"), "--concurrency", "4"};
  argv.insert(argv.end(), common.begin(), common.end());
  const auto batched = RunProcess(argv);
  ASSERT_EQ(batched.exit_code, 0) << batched.err;
  EXPECT_NE(batched.err.find("6 requests (concurrency 4)"), std::string::npos) << batched.err;
  EXPECT_NE(batched.err.find("output tokens/s"), std::string::npos) << batched.err;

  std::istringstream lines(batched.out);
  std::vector<nlohmann::json> outputs;
  for (std::string line; std::getline(lines, line);) outputs.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(outputs.size(), prompts.size());
  int near_ties = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(outputs[i]["index"], i);
    std::vector<std::string> alone_args = {"--prompt", prompts[i]};
    alone_args.insert(alone_args.end(), common.begin(), common.end());
    const auto alone = GenerateJson(alone_args);
    const auto& a = alone["token_ids"];
    const auto& b = outputs[i]["token_ids"];
    ASSERT_EQ(a.size(), b.size()) << "prompt " << i;
    for (size_t t = 0; t < a.size(); ++t) {
      const double la = alone["logprobs"][t], lb = outputs[i]["logprobs"][t];
      if (a[t] != b[t]) {
        EXPECT_LT(std::fabs(la - lb), 2e-4) << "prompt " << i << " diverges at token " << t
                                            << " without a near-tie";
        ++near_ties;
        break;
      }
      EXPECT_NEAR(la, lb, 1e-4) << "prompt " << i << " token " << t;
    }
  }
  RecordProperty("near_ties", near_ties);
}

TEST(GenerateCliTest, PromptsFileErrorsNameTheFile) {
  TempDir dir;
  WriteFileOrDie(dir.File("empty.txt"), "\n\n");
  const auto missing =
      RunProcess({kFoxserve, "generate", "--prompts-file", dir.File("missing.txt")});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("cannot open " + dir.File("missing.txt")), std::string::npos)
      << missing.err;
  const auto empty = RunProcess({kFoxserve, "generate", "--prompts-file", dir.File("empty.txt")});
  EXPECT_NE(empty.exit_code, 0);
  EXPECT_NE(empty.err.find("has no prompts"), std::string::npos) << empty.err;
  const auto bad = RunProcess({kFoxserve, "generate", "--prompts-file", dir.File("empty.txt"),
                               "--concurrency", "0"});
  EXPECT_NE(bad.err.find("--concurrency must be at least 1"), std::string::npos) << bad.err;
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
      {{"--prompt", "a", "--max-tokens", "20000"}, "maximum context length is 16384"},
      {{"--prompt", "a", "--kv-cache-memory", "12 parsecs"}, "--kv-cache-memory"},
      {{"--prompt", "a", "--max-num-seqs", "0"}, "--max-num-seqs"},
      {{"--prompt", "a", "--acp", "maybe"}, "--acp must be on or off"},
      {{"--prompt", "a", "--top-p", "1.5"}, "top_p"},
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
