// `foxserve tokenize` as a user runs it: the built binary on the embedded
// default model (JSON-escaped GPT-2, like the released checkpoints).
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"

namespace fox {
namespace {

using ::fox::testing::RunProcess;

const std::string kFoxserve = std::string(FOX_BINARY_DIR) + "/bin/foxserve";

TEST(TokenizeCliTest, EncodesWithBosAndDecodesBack) {
  const std::string text = "Caf\xC3\xA9 \"quoted\"\n\tand \xF0\x9F\x98\x80 emoji\n";
  const auto with_bos = RunProcess({kFoxserve, "tokenize"}, text);
  ASSERT_EQ(with_bos.exit_code, 0) << with_bos.err;
  const nlohmann::json ids = nlohmann::json::parse(with_bos.out);
  ASSERT_TRUE(ids.is_array());
  EXPECT_EQ(ids[0], 50256);
  EXPECT_EQ(ids[1], 34) << "\"C\", as plain GPT-2 would: escaping leaves ASCII letters alone";

  const auto no_bos = RunProcess({kFoxserve, "tokenize", "--no-bos"}, text);
  ASSERT_EQ(no_bos.exit_code, 0) << no_bos.err;
  nlohmann::json expected = ids;
  expected.erase(0);
  EXPECT_EQ(nlohmann::json::parse(no_bos.out), expected);

  const auto decoded = RunProcess({kFoxserve, "tokenize", "--decode"}, with_bos.out);
  ASSERT_EQ(decoded.exit_code, 0) << decoded.err;
  EXPECT_EQ(decoded.out, text);  // BOS decodes to nothing
}

TEST(TokenizeCliTest, ErrorsGoToStderrWithNonZeroExit) {
  const auto bad_utf8 = RunProcess({kFoxserve, "tokenize"}, "ok\xFF");
  EXPECT_NE(bad_utf8.exit_code, 0);
  EXPECT_NE(bad_utf8.err.find("offset 2"), std::string::npos) << bad_utf8.err;
  EXPECT_EQ(bad_utf8.out, "");

  const auto bad_ids = RunProcess({kFoxserve, "tokenize", "--decode"}, "[15496, \"x\"]");
  EXPECT_NE(bad_ids.exit_code, 0);
  EXPECT_NE(bad_ids.err.find("element 1"), std::string::npos) << bad_ids.err;

  const auto unknown_id = RunProcess({kFoxserve, "tokenize", "--decode"}, "[60000]");
  EXPECT_NE(unknown_id.exit_code, 0);
  EXPECT_NE(unknown_id.err.find("60000"), std::string::npos) << unknown_id.err;

  const auto bad_flag = RunProcess({kFoxserve, "tokenize", "--bogus"}, "x");
  EXPECT_NE(bad_flag.exit_code, 0);
  EXPECT_NE(bad_flag.err.find("--bogus"), std::string::npos) << bad_flag.err;

  ::fox::testing::TempDir dir;
  ::fox::testing::WriteFileOrDie(dir.File("tokenizer_config.json"),
                                 R"({"tokenizer_class": "BertTokenizer"})");
  const auto refused = RunProcess({kFoxserve, "tokenize", "--model", dir.path()}, "x");
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("BertTokenizer"), std::string::npos) << refused.err;
}

}  // namespace
}  // namespace fox
