// The engine loop on its own thread. Front-end threads Submit requests and
// read each one's RequestStream; Abort and Shutdown reach the loop through
// the inbox, the only lock on the way in. All scheduler and cache state
// belongs to the loop thread (EngineCore), so the engine itself takes no
// locks while it steps.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/engine_core.h"

namespace fox {

class Engine {
 public:
  // Starts the loop thread over `core`.
  explicit Engine(std::unique_ptr<EngineCore> core);
  // Shutdown with no grace: aborts whatever still runs.
  ~Engine();

  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Queues a request and returns the stream of its events, which ends with
  // exactly one finish event. Refused, with nothing queued: InvalidArgument
  // (what is wrong with the request), AlreadyExists (its id is alive),
  // ResourceExhausted (the waiting queue holds --max-queued-requests),
  // Unavailable (shutting down).
  absl::StatusOr<std::shared_ptr<RequestStream>> Submit(EngineRequest request);
  // Ends the request with an abort event within one step. Unknown or finished ids are ignored.
  void Abort(const std::string& id);

  // Stops accepting requests, lets the live ones finish for up to `grace`,
  // aborts the rest and stops the loop. Afterwards every request has had its
  // finish event and every block is back in the pool. Idempotent.
  void Shutdown(absl::Duration grace = absl::ZeroDuration());
  // Waits until no request is alive; false at the deadline.
  bool WaitUntilIdle(absl::Duration timeout);

  bool accepting() const;
  int64_t num_live_requests() const;
  // A snapshot taken by the loop after a recent step (at most ~20 ms old
  // while it runs, exact once idle or stopped).
  EngineStats Stats() const;
  // Constant after construction; safe from any thread.
  const EngineConfig& config() const { return core_->config(); }
  const FoxConfig& model_config() const { return core_->model_config(); }

 private:
  struct Pending {
    EngineRequest request;
    std::shared_ptr<RequestStream> stream;
    Clock::time_point arrival;
  };

  void Loop();
  void Publish(bool force);

  std::unique_ptr<EngineCore> core_;  // loop thread only, but for constant accessors

  mutable std::mutex mu_;
  std::condition_variable wake_;  // the loop: inbox, aborts, stop
  std::condition_variable idle_;  // waiters: live requests finished
  std::vector<Pending> inbox_;
  std::vector<std::string> aborts_;
  std::unordered_set<std::string> live_ids_;
  int64_t waiting_in_core_ = 0;  // published by the loop after each step
  bool accepting_ = true;
  bool abort_all_ = false;
  bool stop_ = false;

  mutable std::mutex stats_mu_;
  EngineStats stats_;
  Clock::time_point stats_time_;

  std::mutex shutdown_mu_;  // serialises Shutdown callers
  std::thread thread_;
};

}  // namespace fox
