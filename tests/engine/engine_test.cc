// The threaded Engine: concurrent submitters, aborts from other threads,
// shutdown with grace, WaitUntilIdle, submission refusals, and stopping on
// strings and lengths with the embedded model's real tokenizer.
#include "engine/engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "models/tokenizer.h"
#include "tests/engine/engine_test_util.h"

namespace fox {
namespace {

using testing::CompareStats;
using testing::Drain;
using testing::EndedOnce;
using testing::GreedyParams;
using testing::MakeRequest;
using testing::MakeSmallModel;
using testing::Output;
using testing::PeakedInit;
using testing::RandomPrompt;
using testing::ReadToEnd;
using testing::RunAlone;
using testing::SameOutput;
using testing::SeededParams;
using testing::SmallEngineConfig;
using testing::SmallModel;

constexpr int32_t kVocab = 300;  // SmallTestConfig

// Every head forgets within a few tens of tokens, so a request can run for
// a long time in a few blocks per table: a request that will not finish
// while a test watches.
std::unique_ptr<SmallModel> MakeForgettingModel() {
  RandomInitOptions init = PeakedInit(17);
  init.fgate_bias = {-2.0f, -2.0f, -2.0f, -2.0f};
  return MakeSmallModel(init);
}

std::unique_ptr<Engine> MakeEngine(const Checkpoint& model, const EngineConfig& config,
                                   const Tokenizer* tokenizer = nullptr) {
  absl::StatusOr<std::unique_ptr<EngineCore>> core =
      EngineCore::ForCheckpoint(model, tokenizer, config);
  EXPECT_TRUE(core.ok()) << core.status();
  return core.ok() ? std::make_unique<Engine>(std::move(*core)) : nullptr;
}

// A request that runs far longer than any test waits.
EngineRequest LongRequest(const std::string& id) {
  return MakeRequest(id, RandomPrompt(8, 99, kVocab), GreedyParams(150000));
}
constexpr int64_t kLongModelLen = 200000;

// Waits until `done` holds, polling; false after `timeout`.
template <typename Pred>
bool WaitFor(Pred done, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  const Clock::time_point deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// Four threads submit six requests each at once and read their streams (one
// thread through the stream's notifier). Every stream ends with exactly one
// finish event, last, and each output equals the request run alone.
TEST(EngineTest, ConcurrentSubmittersEachGetOneCompleteStream) {
  std::unique_ptr<SmallModel> model = MakeSmallModel(PeakedInit(3));
  ASSERT_NE(model, nullptr);
  constexpr int kThreads = 4, kPerThread = 6;
  std::vector<EngineRequest> requests;
  for (int i = 0; i < kThreads * kPerThread; ++i) {
    requests.push_back(
        MakeRequest(absl::StrCat("c", i), RandomPrompt(1 + (i * 37) % 90, 500 + i, kVocab),
                    i % 3 == 0 ? SeededParams(8 + i % 11, 9000 + i) : GreedyParams(8 + i % 11)));
  }
  std::unique_ptr<Engine> engine = MakeEngine(model->checkpoint, SmallEngineConfig(4096));
  ASSERT_NE(engine, nullptr);

  std::vector<Output> outputs(requests.size());
  std::atomic<int> refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::shared_ptr<RequestStream>> streams;
      for (int j = 0; j < kPerThread; ++j) {
        absl::StatusOr<std::shared_ptr<RequestStream>> s =
            engine->Submit(requests[t * kPerThread + j]);
        if (!s.ok()) {
          ++refused;
          return;
        }
        streams.push_back(*s);
      }
      if (t != 0) {
        for (int j = 0; j < kPerThread; ++j) outputs[t * kPerThread + j] = ReadToEnd(*streams[j]);
        return;
      }
      // Event-driven: the notifier wakes this thread, which drains with TryNext.
      std::mutex mu;
      std::condition_variable cv;
      int notifications = 0;
      for (auto& stream : streams) {
        stream->SetNotifier([&] {
          std::lock_guard<std::mutex> lock(mu);
          ++notifications;
          cv.notify_one();
        });
      }
      const Clock::time_point deadline = Clock::now() + std::chrono::seconds(60);
      for (;;) {
        bool all_done = true;
        for (int j = 0; j < kPerThread; ++j) {
          Drain(*streams[j], &outputs[j]);
          all_done = all_done && outputs[j].finished();
        }
        if (all_done || Clock::now() > deadline) break;
        std::unique_lock<std::mutex> lock(mu);
        cv.wait_until(lock, deadline, [&] { return notifications > 0; });
        notifications = 0;
      }
      for (auto& stream : streams) stream->SetNotifier(nullptr);
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_EQ(refused.load(), 0);
  ASSERT_TRUE(engine->WaitUntilIdle(absl::Seconds(30)));
  const EngineStats stats = engine->Stats();
  EXPECT_EQ(stats.kv_blocks_free, stats.kv_blocks_total);
  EXPECT_EQ(stats.counters.finished_by(FinishReason::kLength), kThreads * kPerThread);
  EXPECT_EQ(stats.num_running + stats.num_waiting, 0);

  CompareStats compare;
  for (size_t i = 0; i < requests.size(); ++i) {
    SCOPED_TRACE(requests[i].id);
    ASSERT_TRUE(EndedOnce(outputs[i]));
    EXPECT_EQ(outputs[i].finish_reason(), FinishReason::kLength);
    EXPECT_TRUE(SameOutput(RunAlone(model->checkpoint, SmallEngineConfig(256), requests[i]),
                           outputs[i], 1e-4, &compare));
  }
  compare.Print("threaded");
  compare.Record("threaded");
}

// Abort from a thread that is not reading the stream: the reader sees the
// tokens so far and then one abort finish event; the blocks come back.
// Aborting an unknown or finished id does nothing; aborting right after
// Submit works too.
TEST(EngineTest, AbortFromAnotherThreadEndsTheStream) {
  std::unique_ptr<SmallModel> model = MakeForgettingModel();
  ASSERT_NE(model, nullptr);
  std::unique_ptr<Engine> engine =
      MakeEngine(model->checkpoint, SmallEngineConfig(512, 64, kLongModelLen));
  ASSERT_NE(engine, nullptr);
  absl::StatusOr<std::shared_ptr<RequestStream>> stream = engine->Submit(LongRequest("long"));
  ASSERT_TRUE(stream.ok()) << stream.status();

  std::atomic<size_t> tokens_seen{0};
  Output out;
  std::thread reader([&] {
    const Clock::time_point deadline = Clock::now() + std::chrono::seconds(30);
    while (!out.finished()) {
      std::optional<TokenEvent> event = (*stream)->NextUntil(deadline);
      if (!event) break;
      testing::AddEvent(std::move(*event), &out);
      tokens_seen = out.token_ids.size();
    }
    Drain(**stream, &out);
  });
  std::thread aborter([&] {
    WaitFor([&] { return tokens_seen.load() >= 3; });
    engine->Abort("long");
    engine->Abort("no-such-request");
  });
  aborter.join();
  reader.join();
  ASSERT_TRUE(EndedOnce(out));
  EXPECT_EQ(out.finish_reason(), FinishReason::kAbort);
  EXPECT_GE(out.token_ids.size(), 3u);
  EXPECT_LT(out.token_ids.size(), 150000u);
  EXPECT_TRUE((*stream)->finished());
  EXPECT_FALSE((*stream)->Next().has_value());
  ASSERT_TRUE(engine->WaitUntilIdle(absl::Seconds(10)));
  engine->Abort("long");  // finished: ignored

  // Aborted before the loop has taken it from the inbox, or just after.
  absl::StatusOr<std::shared_ptr<RequestStream>> early = engine->Submit(LongRequest("early"));
  ASSERT_TRUE(early.ok()) << early.status();
  engine->Abort("early");
  const Output early_out = ReadToEnd(**early);
  ASSERT_TRUE(EndedOnce(early_out));
  EXPECT_EQ(early_out.finish_reason(), FinishReason::kAbort);

  ASSERT_TRUE(engine->WaitUntilIdle(absl::Seconds(10)));
  const EngineStats stats = engine->Stats();
  EXPECT_EQ(stats.kv_blocks_free, stats.kv_blocks_total);
  EXPECT_EQ(stats.counters.finished_by(FinishReason::kAbort), 2);
}

// Shutdown(grace) lets a short request finish, aborts the long ones (running
// and waiting) with exactly one abort event each, returns every block, and
// refuses later submissions. A second Shutdown does nothing.
TEST(EngineTest, ShutdownWithGraceAbortsWhatIsStillLive) {
  std::unique_ptr<SmallModel> model = MakeForgettingModel();
  ASSERT_NE(model, nullptr);
  EngineConfig config = SmallEngineConfig(512, 64, kLongModelLen);
  config.max_num_seqs = 3;  // two of the five long requests wait
  std::unique_ptr<Engine> engine = MakeEngine(model->checkpoint, config);
  ASSERT_NE(engine, nullptr);
  std::vector<std::shared_ptr<RequestStream>> streams;
  absl::StatusOr<std::shared_ptr<RequestStream>> s =
      engine->Submit(MakeRequest("short", RandomPrompt(5, 1, kVocab), GreedyParams(3)));
  ASSERT_TRUE(s.ok()) << s.status();
  streams.push_back(*s);
  for (int i = 0; i < 5; ++i) {
    s = engine->Submit(LongRequest(absl::StrCat("long", i)));
    ASSERT_TRUE(s.ok()) << s.status();
    streams.push_back(*s);
  }
  engine->Shutdown(absl::Milliseconds(300));
  EXPECT_FALSE(engine->accepting());
  EXPECT_EQ(engine->num_live_requests(), 0);

  for (size_t i = 0; i < streams.size(); ++i) {
    SCOPED_TRACE(streams[i]->request_id());
    Output out;
    Drain(*streams[i], &out);  // everything is there already
    ASSERT_TRUE(EndedOnce(out));
    EXPECT_TRUE(streams[i]->finished());
    EXPECT_EQ(out.finish_reason(), i == 0 ? FinishReason::kLength : FinishReason::kAbort);
  }
  const EngineStats stats = engine->Stats();
  EXPECT_EQ(stats.kv_blocks_free, stats.kv_blocks_total);
  EXPECT_EQ(stats.num_running + stats.num_waiting, 0);
  EXPECT_EQ(stats.counters.finished_by(FinishReason::kAbort), 5);

  absl::StatusOr<std::shared_ptr<RequestStream>> late =
      engine->Submit(MakeRequest("late", {1, 2}, GreedyParams(2)));
  EXPECT_EQ(late.status().code(), absl::StatusCode::kUnavailable) << late.status();
  engine->Shutdown(absl::Seconds(1));  // idempotent, returns at once
}

// WaitUntilIdle returns true once every request has sent its finish event
// (with the statistics already exact), and false at its deadline while a
// request still runs.
TEST(EngineTest, WaitUntilIdle) {
  std::unique_ptr<SmallModel> model = MakeForgettingModel();
  ASSERT_NE(model, nullptr);
  std::unique_ptr<Engine> engine =
      MakeEngine(model->checkpoint, SmallEngineConfig(512, 64, kLongModelLen));
  ASSERT_NE(engine, nullptr);
  EXPECT_TRUE(engine->WaitUntilIdle(absl::Milliseconds(1)));  // nothing submitted
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<std::shared_ptr<RequestStream>> s = engine->Submit(
        MakeRequest(absl::StrCat("w", i), RandomPrompt(10 + i, i, kVocab), GreedyParams(6)));
    ASSERT_TRUE(s.ok()) << s.status();
    streams.push_back(*s);
  }
  ASSERT_TRUE(engine->WaitUntilIdle(absl::Seconds(30)));
  EXPECT_EQ(engine->num_live_requests(), 0);
  EngineStats stats = engine->Stats();
  EXPECT_EQ(stats.kv_blocks_free, stats.kv_blocks_total);
  EXPECT_EQ(stats.counters.finished_by(FinishReason::kLength), 5);
  for (auto& stream : streams) {
    Output out;
    Drain(*stream, &out);
    EXPECT_TRUE(EndedOnce(out));
    EXPECT_EQ(out.token_ids.size(), 6u);
  }

  // Straight after a finish event the engine may still be finishing its
  // step; after WaitUntilIdle the statistics are exact and the id is free.
  for (int i = 0; i < 300; ++i) {
    absl::StatusOr<std::shared_ptr<RequestStream>> s =
        engine->Submit(MakeRequest("r", {1, 2}, GreedyParams(1)));
    ASSERT_TRUE(s.ok()) << s.status();
    ASSERT_TRUE(EndedOnce(ReadToEnd(**s)));
    ASSERT_TRUE(engine->WaitUntilIdle(absl::Seconds(10)));
    stats = engine->Stats();
    ASSERT_EQ(stats.kv_blocks_free, stats.kv_blocks_total) << "after " << i;
    ASSERT_EQ(stats.counters.finished_by(FinishReason::kLength), 6 + i);
  }

  absl::StatusOr<std::shared_ptr<RequestStream>> s = engine->Submit(LongRequest("long"));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(engine->WaitUntilIdle(absl::Milliseconds(50)));
  EXPECT_EQ(engine->num_live_requests(), 1);
  engine->Abort("long");
  ASSERT_TRUE(engine->WaitUntilIdle(absl::Seconds(10)));
  stats = engine->Stats();
  EXPECT_EQ(stats.kv_blocks_free, stats.kv_blocks_total);
  EXPECT_EQ(ReadToEnd(**s).finish_reason(), FinishReason::kAbort);
}

// Submit refuses, with nothing queued: a bad request (InvalidArgument naming
// the parameter), a live id (AlreadyExists), a full waiting queue
// (ResourceExhausted naming --max-queued-requests), and anything after
// Shutdown (Unavailable). The queue limit holds however the submissions
// interleave with the engine's steps.
TEST(EngineTest, SubmitRefusals) {
  std::unique_ptr<SmallModel> model = MakeForgettingModel();
  ASSERT_NE(model, nullptr);
  EngineConfig config = SmallEngineConfig(4096, /*max_num_batched_tokens=*/1024, kLongModelLen);
  config.max_num_seqs = 1;
  config.max_queued_requests = 2;
  std::unique_ptr<Engine> engine = MakeEngine(model->checkpoint, config);
  ASSERT_NE(engine, nullptr);

  EngineRequest bad = MakeRequest("bad", {1, 2, 3}, GreedyParams(4));
  bad.params.top_p = 1.5f;
  absl::StatusOr<std::shared_ptr<RequestStream>> s = engine->Submit(bad);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("top_p"), std::string::npos) << s.status();
  s = engine->Submit(MakeRequest("empty", {}, GreedyParams(4)));
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  s = engine->Submit(MakeRequest("huge", {1}, GreedyParams(kLongModelLen)));
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine->num_live_requests(), 0);

  // "long" runs alone (max_num_seqs 1) through a long prompt, in steps of
  // 1024 tokens that take a few milliseconds each (about 150 of them, more
  // than the rounds below take), and then decodes for a long time.
  absl::StatusOr<std::shared_ptr<RequestStream>> long_stream = engine->Submit(
      MakeRequest("long", RandomPrompt(150000, 98, kVocab), GreedyParams(kLongModelLen - 150000)));
  ASSERT_TRUE(long_stream.ok()) << long_stream.status();
  s = engine->Submit(LongRequest("long"));
  EXPECT_EQ(s.status().code(), absl::StatusCode::kAlreadyExists) << s.status();
  ASSERT_TRUE(WaitFor([&] { return engine->Stats().counters.steps > 0; }));
  const int64_t steps_before = engine->Stats().counters.steps;
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const auto step_time = std::chrono::microseconds(100000) /
                         std::max<int64_t>(1, engine->Stats().counters.steps - steps_before);

  // Two requests wait; a third is refused whether the engine took the first
  // in before its step, during it, or not yet: the pause between the first
  // and the others sweeps two step durations.
  for (int round = 0; round < 24; ++round) {
    SCOPED_TRACE(round);
    const std::string b = absl::StrCat("b", round), c = absl::StrCat("c", round);
    absl::StatusOr<std::shared_ptr<RequestStream>> sb =
        engine->Submit(MakeRequest(b, {1, 2, 3}, GreedyParams(4)));
    ASSERT_TRUE(sb.ok()) << sb.status();
    std::this_thread::sleep_for(step_time * (round % 12) / 6);
    absl::StatusOr<std::shared_ptr<RequestStream>> sc =
        engine->Submit(MakeRequest(c, {4, 5, 6}, GreedyParams(4)));
    ASSERT_TRUE(sc.ok()) << sc.status();
    s = engine->Submit(MakeRequest("d", {7}, GreedyParams(4)));
    ASSERT_EQ(s.status().code(), absl::StatusCode::kResourceExhausted) << s.status();
    EXPECT_NE(s.status().message().find("--max-queued-requests"), std::string::npos) << s.status();
    engine->Abort(b);
    engine->Abort(c);
    EXPECT_EQ(ReadToEnd(**sb).finish_reason(), FinishReason::kAbort);
    EXPECT_EQ(ReadToEnd(**sc).finish_reason(), FinishReason::kAbort);
    ASSERT_TRUE(WaitFor([&] { return engine->num_live_requests() == 1; }));
  }
  ASSERT_FALSE((*long_stream)->finished());

  engine->Shutdown();
  EXPECT_EQ(ReadToEnd(**long_stream).finish_reason(), FinishReason::kAbort);
  s = engine->Submit(MakeRequest("after", {1}, GreedyParams(1)));
  EXPECT_EQ(s.status().code(), absl::StatusCode::kUnavailable) << s.status();
  const EngineStats stats = engine->Stats();
  EXPECT_EQ(stats.kv_blocks_free, stats.kv_blocks_total);
}

// A consumer that has taken the finish event and cleared the notifier may
// destroy whatever the notifier captured: SetNotifier waits for a call in
// progress on the engine thread to return.
TEST(RequestStreamTest, SetNotifierWaitsForACallInProgress) {
  RequestStream stream("n");
  std::atomic<bool> in_notifier{false};
  std::atomic<int> calls{0};
  stream.SetNotifier([&] {
    in_notifier = true;
    ++calls;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    in_notifier = false;
  });
  std::thread producer([&] {
    TokenEvent finish;
    finish.kind = TokenEvent::Kind::kFinish;
    finish.finish_reason = FinishReason::kStop;
    stream.Push(std::move(finish));
  });
  // The event is queued before the notifier runs.
  std::optional<TokenEvent> event = stream.NextUntil(Clock::now() + std::chrono::seconds(10));
  ASSERT_TRUE(event.has_value());
  EXPECT_TRUE(event->is_finish());
  ASSERT_TRUE(WaitFor([&] { return calls.load() == 1; }));
  stream.SetNotifier(nullptr);
  EXPECT_FALSE(in_notifier.load()) << "SetNotifier returned while the old notifier ran";
  producer.join();
  EXPECT_EQ(calls.load(), 1);
}

// ---------------------------------------------------------------------------
// With the embedded model (fox-tiny: random weights, GPT-2's tokenizer).

class EngineTextTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string dir = FOX_BINARY_DIR "/share/foxserve/models/fox-tiny";
    absl::StatusOr<Checkpoint> model = LoadCheckpoint(dir);
    absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::Load(dir);
    if (!model.ok() || !tokenizer.ok()) {
      load_error_ =
          new std::string("the embedded model is missing (build the fox_embedded_model target): " +
                          (model.ok() ? tokenizer.status() : model.status()).ToString());
      return;
    }
    model_ = new Checkpoint(std::move(*model));
    tokenizer_ = tokenizer->release();
  }
  static void TearDownTestSuite() {
    delete model_;
    delete tokenizer_;
    delete load_error_;
    model_ = nullptr;
    tokenizer_ = nullptr;
    load_error_ = nullptr;
  }
  void SetUp() override {
    ASSERT_EQ(load_error_, nullptr) << *load_error_;
    EngineConfig config;
    config.num_kv_blocks = 1024;
    config.kv_dtype = DType::kF32;
    config.cpu_threads = 1;  // max_model_len: the tokenizer's
    engine_ = MakeEngine(*model_, config, tokenizer_);
    ASSERT_NE(engine_, nullptr);
    ASSERT_EQ(engine_->config().max_model_len, tokenizer_->model_max_length());
  }

  Output Run(SamplingParams params) {
    absl::StatusOr<std::vector<int32_t>> prompt =
        tokenizer_->Encode("The forget gate decides what the model keeps", /*add_bos=*/false);
    EXPECT_TRUE(prompt.ok()) << prompt.status();
    absl::StatusOr<std::shared_ptr<RequestStream>> stream =
        engine_->Submit(MakeRequest(absl::StrCat("t", next_id_++), *prompt, params));
    EXPECT_TRUE(stream.ok()) << stream.status();
    return stream.ok() ? ReadToEnd(**stream) : Output{};
  }

  static Checkpoint* model_;
  static Tokenizer* tokenizer_;
  static std::string* load_error_;
  std::unique_ptr<Engine> engine_;
  int next_id_ = 0;
};

Checkpoint* EngineTextTest::model_ = nullptr;
Tokenizer* EngineTextTest::tokenizer_ = nullptr;
std::string* EngineTextTest::load_error_ = nullptr;

// max_tokens ends the output with "length"; the streamed pieces concatenate
// to the decoded tokens.
TEST_F(EngineTextTest, MaxTokensGivesLengthAndPiecesConcatenateToText) {
  const Output out = Run(GreedyParams(24));
  ASSERT_TRUE(EndedOnce(out));
  EXPECT_EQ(out.finish_reason(), FinishReason::kLength);
  EXPECT_EQ(out.token_ids.size(), 24u);
  absl::StatusOr<std::string> decoded = tokenizer_->Decode(out.token_ids);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(out.text, *decoded);
  EXPECT_FALSE(out.text.empty());
}

// A stop string taken from a greedy run's text ends a second run at its
// first occurrence with finish reason "stop": the text is everything before
// it (or through it with include_stop_str_in_output), no streamed piece ever
// shows part of it, and the tokens are a prefix of the first run's.
TEST_F(EngineTextTest, StopStringFromAGreedyRunEndsASecondRun) {
  const Output first = Run(GreedyParams(40));
  ASSERT_TRUE(EndedOnce(first));
  const std::string& text = first.text;
  // Three printable ASCII bytes, at least one alphanumeric, from the middle on.
  auto usable = [&](size_t p) {
    bool alnum = false;
    for (size_t i = p; i < p + 3; ++i) {
      const unsigned char ch = text[i];
      if (ch < 0x20 || ch >= 0x7f) return false;
      alnum = alnum || std::isalnum(ch);
    }
    return alnum;
  };
  size_t p = text.size() / 2;
  while (p + 3 <= text.size() && !usable(p)) ++p;
  if (p + 3 > text.size()) {
    p = 0;
    while (p + 3 <= text.size() && !usable(p)) ++p;
  }
  ASSERT_LE(p + 3, text.size()) << "no ASCII in the greedy text: " << text;
  const std::string stop = text.substr(p, 3);
  const size_t at = text.find(stop);
  SCOPED_TRACE("stop string '" + stop + "' in '" + text + "'");

  SamplingParams params = GreedyParams(40);
  params.stop = {stop};
  const Output second = Run(params);
  ASSERT_TRUE(EndedOnce(second));
  EXPECT_EQ(second.finish_reason(), FinishReason::kStop);
  ASSERT_TRUE(second.finish->stop_string.has_value());
  EXPECT_EQ(*second.finish->stop_string, stop);
  EXPECT_EQ(second.text, text.substr(0, at));
  std::string streamed;
  for (const std::string& piece : second.pieces) {
    streamed += piece;
    EXPECT_EQ(streamed.find(stop), std::string::npos);
  }
  ASSERT_LE(second.token_ids.size(), first.token_ids.size());
  EXPECT_EQ(second.token_ids,
            std::vector<int32_t>(first.token_ids.begin(),
                                 first.token_ids.begin() + second.token_ids.size()));
  // The stop string ends within the last token's text.
  absl::StatusOr<std::string> before_last =
      tokenizer_->Decode(absl::MakeConstSpan(second.token_ids).first(second.token_ids.size() - 1));
  ASSERT_TRUE(before_last.ok());
  EXPECT_LT(before_last->size(), at + stop.size());

  params.include_stop_str_in_output = true;
  const Output third = Run(params);
  ASSERT_TRUE(EndedOnce(third));
  EXPECT_EQ(third.finish_reason(), FinishReason::kStop);
  EXPECT_EQ(third.text, text.substr(0, at + stop.size()));
  EXPECT_EQ(third.token_ids, second.token_ids);
}

// A stop token id ends the output with "stop" and that id as stop_token_id;
// its own text is dropped, so the text is that of the tokens before it.
TEST_F(EngineTextTest, StopTokenIdEndsWithTheTextBeforeIt) {
  const Output first = Run(GreedyParams(24));
  ASSERT_TRUE(EndedOnce(first));
  const int32_t stop_id = first.token_ids[10];
  const size_t at =
      std::find(first.token_ids.begin(), first.token_ids.end(), stop_id) - first.token_ids.begin();
  SamplingParams params = GreedyParams(24);
  params.stop_token_ids = {stop_id};
  const Output second = Run(params);
  ASSERT_TRUE(EndedOnce(second));
  EXPECT_EQ(second.finish_reason(), FinishReason::kStop);
  ASSERT_TRUE(second.finish->stop_token_id.has_value());
  EXPECT_EQ(*second.finish->stop_token_id, stop_id);
  EXPECT_EQ(second.token_ids,
            std::vector<int32_t>(first.token_ids.begin(), first.token_ids.begin() + at + 1));
  absl::StatusOr<std::string> before =
      tokenizer_->Decode(absl::MakeConstSpan(first.token_ids).first(at));
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(second.text, *before);
}

// Text held back because it may begin a stop string goes out with the abort
// event: the pieces of an aborted request still concatenate to its tokens'
// text. EngineCore is stepped directly to abort exactly while text is held.
TEST_F(EngineTextTest, AbortSendsTheHeldBackText) {
  const Output first = Run(GreedyParams(40));
  ASSERT_TRUE(EndedOnce(first));
  // A stop string that never completes: a letter of the output followed by
  // bytes the model does not produce.
  size_t p = first.text.size() / 2;
  while (p < first.text.size() && !std::isalpha(static_cast<unsigned char>(first.text[p]))) ++p;
  ASSERT_LT(p, first.text.size()) << "no letter in the second half of: " << first.text;
  const std::string stop = first.text.substr(p, 1) + "\x7f\x7f";
  EngineConfig config;
  config.num_kv_blocks = 1024;
  config.cpu_threads = 1;
  absl::StatusOr<std::unique_ptr<EngineCore>> core =
      EngineCore::ForCheckpoint(*model_, tokenizer_, config);
  ASSERT_TRUE(core.ok()) << core.status();
  absl::StatusOr<std::vector<int32_t>> prompt =
      tokenizer_->Encode("The forget gate decides what the model keeps", /*add_bos=*/false);
  ASSERT_TRUE(prompt.ok());
  SamplingParams params = GreedyParams(40);
  params.stop = {stop};
  auto stream = std::make_shared<RequestStream>("held");
  ASSERT_TRUE((*core)->AddRequest(MakeRequest("held", *prompt, params), stream).ok());
  Output out;
  bool aborted = false;
  while ((*core)->has_work() && !aborted) {
    (*core)->Step();
    Drain(*stream, &out);
    absl::StatusOr<std::string> text = tokenizer_->Decode(out.token_ids);
    ASSERT_TRUE(text.ok());
    if (!out.finished() && out.text.size() < text->size()) {
      EXPECT_EQ(text->substr(0, out.text.size()), out.text);
      EXPECT_TRUE((*core)->Abort("held"));
      aborted = true;
    }
  }
  ASSERT_TRUE(aborted) << "no text was ever held back for '" << stop << "'";
  Drain(*stream, &out);
  ASSERT_TRUE(EndedOnce(out));
  EXPECT_EQ(out.finish_reason(), FinishReason::kAbort);
  EXPECT_FALSE(out.finish->text.empty());
  absl::StatusOr<std::string> text = tokenizer_->Decode(out.token_ids);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(out.text, *text);
  EXPECT_EQ((*core)->pool().num_free(), (*core)->pool().num_blocks());
}

}  // namespace
}  // namespace fox
