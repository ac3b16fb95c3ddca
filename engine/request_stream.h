// What a request produces, and the thread-safe stream that carries it from
// the engine thread to whoever submitted the request.
//
//   Submit -> [token] [token] ... [token] [finish]
//
// Every accepted request gets exactly one finish event, last; nothing follows
// it. Token events carry one generated token each with the text that became
// final with it (possibly empty: text that may begin a stop string or a
// UTF-8 sequence is held back until it settles).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "engine/sampler.h"
#include "engine/stop_checker.h"

namespace fox {

using Clock = std::chrono::steady_clock;

// When a request passed each point of its life; unset points were not reached.
struct RequestTimes {
  Clock::time_point arrival;                      // accepted by Submit
  std::optional<Clock::time_point> scheduled;     // first scheduled (queue time ends)
  std::optional<Clock::time_point> first_token;   // first token sampled
  std::optional<Clock::time_point> last_token;    // latest token sampled
  std::optional<Clock::time_point> finished;      // finish event sent
};

struct TokenEvent {
  enum class Kind { kToken, kFinish };
  Kind kind = Kind::kToken;

  // kToken: the token, its raw logprob and the requested alternatives.
  int32_t token_id = -1;
  float logprob = 0.0f;
  std::vector<TopLogprob> top_logprobs;

  // Text that became final with this event (both kinds).
  std::string text;

  // kFinish only.
  FinishReason finish_reason = FinishReason::kNone;
  std::optional<int32_t> stop_token_id;  // vLLM's stop_reason, when a stop token id ended it
  std::optional<std::string> stop_string;
  std::string error;                     // kError: what went wrong
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int32_t num_preemptions = 0;
  RequestTimes times;

  bool is_finish() const { return kind == Kind::kFinish; }
};

// A single-producer (engine thread), single-consumer queue of one request's
// events. The consumer either blocks in Next, or registers a notifier (for
// event-driven front ends) and drains with TryNext when it is called.
class RequestStream {
 public:
  explicit RequestStream(std::string request_id) : request_id_(std::move(request_id)) {}

  const std::string& request_id() const { return request_id_; }

  // Blocks until an event is available and returns it; returns nullopt once
  // the finish event has been returned.
  std::optional<TokenEvent> Next();
  // As Next, giving up at `deadline` (nullopt then too; check finished()).
  std::optional<TokenEvent> NextUntil(Clock::time_point deadline);
  // An event if one is queued now.
  std::optional<TokenEvent> TryNext();
  // True once the finish event has been taken by the consumer.
  bool finished() const;

  // Called (on the engine thread, without the stream's lock held) after each
  // push. Keep it short: post work elsewhere. Set it before events can
  // arrive, or call TryNext once after setting it. SetNotifier waits for a
  // call in progress to return, so after SetNotifier(nullptr) the old
  // notifier is neither running nor called again and what it captured may
  // go. So never call SetNotifier from the notifier, or while holding a lock
  // the notifier takes.
  void SetNotifier(std::function<void()> notifier);

  // Engine side.
  void Push(TokenEvent event);

 private:
  std::optional<TokenEvent> PopLocked();

  const std::string request_id_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<TokenEvent> events_;
  bool finish_taken_ = false;
  std::mutex notifier_mu_;  // held while the notifier runs
  std::function<void()> notifier_;
};

}  // namespace fox
