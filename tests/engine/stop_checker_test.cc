#include "engine/stop_checker.h"

#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace fox {
namespace {

constexpr int32_t kEos = 0;
constexpr int32_t kText = 7;  // any ordinary token id

struct Streamed {
  std::vector<std::string> emitted;  // one entry per Append
  std::string text;                  // their concatenation
  StopCheck last;
};

// Feeds ordinary tokens with the given pieces until the checker finishes.
Streamed Stream(const SamplingParams& params, const std::vector<std::string>& pieces) {
  StopChecker checker(params, kEos);
  Streamed out;
  for (const std::string& piece : pieces) {
    out.last = checker.Append(kText, piece);
    out.emitted.push_back(out.last.text);
    out.text += out.last.text;
    if (checker.finished()) break;
  }
  return out;
}

SamplingParams WithStops(std::vector<std::string> stop, int64_t max_tokens = 100) {
  SamplingParams params;
  params.stop = std::move(stop);
  params.max_tokens = max_tokens;
  return params;
}

TEST(StopCheckerTest, StopStringSplitAcrossTwoTokens) {
  const Streamed out = Stream(WithStops({"\n\n"}), {"Hello", "\n", "\n", "never"});
  EXPECT_EQ(out.emitted, (std::vector<std::string>{"Hello", "", ""}));
  EXPECT_EQ(out.last.finish_reason, FinishReason::kStop);
  EXPECT_EQ(out.last.stop_string, "\n\n");
  EXPECT_FALSE(out.last.stop_token_id.has_value());
}

TEST(StopCheckerTest, StopStringEndSplitAsEAndNd) {
  const Streamed out = Stream(WithStops({"END"}), {"abc", "E", "ND", "more"});
  EXPECT_EQ(out.emitted, (std::vector<std::string>{"abc", "", ""}));
  EXPECT_EQ(out.text, "abc");
  EXPECT_EQ(out.last.finish_reason, FinishReason::kStop);
}

TEST(StopCheckerTest, IncludeStopStringInOutput) {
  SamplingParams params = WithStops({"END"});
  params.include_stop_str_in_output = true;
  const Streamed out = Stream(params, {"abc", "E", "NDxyz", "more"});
  EXPECT_EQ(out.text, "abcEND");
  EXPECT_EQ(out.emitted.size(), 3u);
}

TEST(StopCheckerTest, HeldBackTextIsReleasedWhenItIsNoStop) {
  const Streamed out = Stream(WithStops({"END"}), {"E", "X", "EN", "D!"});
  EXPECT_EQ(out.emitted, (std::vector<std::string>{"", "EX", "", ""}));
  EXPECT_EQ(out.last.finish_reason, FinishReason::kStop);
}

TEST(StopCheckerTest, FalseStartInsideAPartialMatchKeepsOnlyTheLiveSuffix) {
  // "ab" could start "abc"; "aba" can only keep "a"; then "ab" again, then "c".
  const Streamed out = Stream(WithStops({"abc"}), {"a", "b", "a", "b", "c"});
  EXPECT_EQ(out.emitted, (std::vector<std::string>{"", "", "ab", "", ""}));
  EXPECT_EQ(out.text, "ab");
}

TEST(StopCheckerTest, TextAfterStopStringInTheSamePieceIsDropped) {
  const Streamed out = Stream(WithStops({"END"}), {"fooENDbar"});
  EXPECT_EQ(out.text, "foo");
  EXPECT_EQ(out.last.finish_reason, FinishReason::kStop);
}

TEST(StopCheckerTest, EarliestOfSeveralStopStringsWins) {
  const Streamed out = Stream(WithStops({"yz", "x"}), {"abxcyz"});
  EXPECT_EQ(out.text, "ab");
  EXPECT_EQ(out.last.stop_string, "x");
}

TEST(StopCheckerTest, MaxTokensEndsWithLengthAndReleasesHeldText) {
  const Streamed out = Stream(WithStops({"END"}, 3), {"a", "b", "EN", "D"});
  EXPECT_EQ(out.emitted, (std::vector<std::string>{"a", "b", "EN"}));
  EXPECT_EQ(out.last.finish_reason, FinishReason::kLength);
  EXPECT_EQ(FinishReasonName(out.last.finish_reason), "length");
}

TEST(StopCheckerTest, EosStopsAndDropsItsPiece) {
  SamplingParams params = WithStops({"END"});
  StopChecker checker(params, kEos);
  EXPECT_EQ(checker.Append(kText, "xE").text, "x");
  const StopCheck check = checker.Append(kEos, "<eos>");
  EXPECT_EQ(check.finish_reason, FinishReason::kStop);
  EXPECT_EQ(check.text, "E");  // held back, and no stop string after all
  EXPECT_FALSE(check.stop_token_id.has_value());
  EXPECT_EQ(FinishReasonName(check.finish_reason), "stop");
}

TEST(StopCheckerTest, MinTokensDefersEos) {
  SamplingParams params;
  params.min_tokens = 2;
  StopChecker checker(params, kEos);
  EXPECT_EQ(checker.Append(kEos, "").finish_reason, FinishReason::kNone);
  EXPECT_EQ(checker.Append(kEos, "").finish_reason, FinishReason::kNone);
  EXPECT_EQ(checker.Append(kEos, "").finish_reason, FinishReason::kStop);
  EXPECT_EQ(checker.num_output_tokens(), 3);
}

TEST(StopCheckerTest, MinTokensDefersStopStringsEndingEarly) {
  SamplingParams params = WithStops({"END"});
  params.min_tokens = 1;
  const Streamed out = Stream(params, {"aEND", "b", "cEND"});
  EXPECT_EQ(out.text, "aENDbc");
  EXPECT_EQ(out.last.finish_reason, FinishReason::kStop);
}

TEST(StopCheckerTest, IgnoreEosRunsToLength) {
  SamplingParams params;
  params.ignore_eos = true;
  params.max_tokens = 3;
  StopChecker checker(params, kEos);
  EXPECT_EQ(checker.Append(kEos, "").finish_reason, FinishReason::kNone);
  EXPECT_EQ(checker.Append(kEos, "").finish_reason, FinishReason::kNone);
  EXPECT_EQ(checker.Append(kEos, "").finish_reason, FinishReason::kLength);
}

TEST(StopCheckerTest, StopTokenIdsReportTheirId) {
  SamplingParams params;
  params.stop_token_ids = {42};
  StopChecker checker(params, kEos);
  EXPECT_EQ(checker.Append(kText, "a").text, "a");
  StopCheck check = checker.Append(42, "<stop>");
  EXPECT_EQ(check.finish_reason, FinishReason::kStop);
  EXPECT_EQ(check.stop_token_id, 42);
  EXPECT_EQ(check.text, "");

  params.include_stop_str_in_output = true;
  StopChecker including(params, kEos);
  EXPECT_EQ(including.Append(42, "<stop>").text, "<stop>");
}

TEST(StopCheckerTest, FlushReturnsHeldBackText) {
  StopChecker checker(WithStops({"\n\n"}), kEos);
  EXPECT_EQ(checker.Append(kText, "hi\n").text, "hi");
  EXPECT_EQ(checker.Flush(), "\n");
  EXPECT_FALSE(checker.finished());
}

// Random texts split at random places: whatever the split, the emitted text
// is at every step a prefix of the final text, which is the text cut before
// the first stop string.
TEST(StopCheckerTest, AnySplitEmitsPrefixesOfTheTruncatedText) {
  std::mt19937_64 rng(77);
  const std::string alphabet = "ab\nE";
  const std::vector<std::string> stops = {"\n\n", "abE", "EE"};
  for (int trial = 0; trial < 500; ++trial) {
    std::string text;
    const int length = 1 + static_cast<int>(rng() % 30);
    for (int i = 0; i < length; ++i) text += alphabet[rng() % alphabet.size()];
    size_t cut = std::string::npos;
    for (const std::string& stop : stops) cut = std::min(cut, text.find(stop));
    const std::string expected = text.substr(0, cut);

    std::vector<std::string> pieces;
    for (size_t at = 0; at < text.size();) {
      const size_t n = std::min<size_t>(text.size() - at, rng() % 4);  // empty pieces too
      pieces.push_back(text.substr(at, n));
      at += n;
    }
    StopChecker checker(WithStops(stops, 1000), kEos);
    std::string emitted;
    for (const std::string& piece : pieces) {
      emitted += checker.Append(kText, piece).text;
      ASSERT_EQ(expected.compare(0, emitted.size(), emitted), 0) << "text " << text;
      if (checker.finished()) break;
    }
    if (!checker.finished()) emitted += checker.Flush();
    EXPECT_EQ(emitted, expected) << "text " << text;
    EXPECT_EQ(checker.finished(), cut != std::string::npos) << "text " << text;
  }
}

}  // namespace
}  // namespace fox
