#include "engine/engine.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace fox {
namespace {

constexpr auto kStatsInterval = std::chrono::milliseconds(20);

}  // namespace

Engine::Engine(std::unique_ptr<EngineCore> core) : core_(std::move(core)) {
  stats_ = core_->Stats();
  stats_time_ = Clock::now();
  thread_ = std::thread([this] { Loop(); });
}

Engine::~Engine() { Shutdown(); }

absl::StatusOr<std::shared_ptr<RequestStream>> Engine::Submit(EngineRequest request) {
  if (absl::Status s = core_->Validate(request); !s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  if (!accepting_) return absl::UnavailableError("the engine is shutting down");
  if (live_ids_.count(request.id) != 0) {
    return absl::AlreadyExistsError(absl::StrCat("request id '", request.id, "' is in use"));
  }
  const int64_t waiting = waiting_in_core_ + static_cast<int64_t>(inbox_.size());
  if (waiting >= core_->config().max_queued_requests) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the waiting queue is full (", waiting,
                     " requests, --max-queued-requests); retry later"));
  }
  auto stream = std::make_shared<RequestStream>(request.id);
  live_ids_.insert(request.id);
  inbox_.push_back(Pending{std::move(request), stream, Clock::now()});
  wake_.notify_one();
  return stream;
}

void Engine::Abort(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (live_ids_.count(id) == 0) return;
  aborts_.push_back(id);
  wake_.notify_one();
}

bool Engine::accepting() const {
  std::lock_guard<std::mutex> lock(mu_);
  return accepting_;
}

int64_t Engine::num_live_requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(live_ids_.size());
}

bool Engine::WaitUntilIdle(absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return idle_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                        [&] { return live_ids_.empty(); });
}

void Engine::Shutdown(absl::Duration grace) {
  std::lock_guard<std::mutex> serial(shutdown_mu_);
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    accepting_ = false;
  }
  if (grace > absl::ZeroDuration()) WaitUntilIdle(grace);
  {
    std::lock_guard<std::mutex> lock(mu_);
    abort_all_ = true;
    stop_ = true;
    wake_.notify_one();
  }
  thread_.join();
  Publish(/*force=*/true);
}

EngineStats Engine::Stats() const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  return stats_;
}

void Engine::Publish(bool force) {
  const Clock::time_point now = Clock::now();
  if (!force && now - stats_time_ < kStatsInterval) return;
  EngineStats stats = core_->Stats();
  std::lock_guard<std::mutex> lock(stats_mu_);
  stats_ = std::move(stats);
  stats_time_ = now;
}

void Engine::Loop() {
  std::vector<Pending> inbox;
  std::vector<std::string> aborts;
  for (;;) {
    bool abort_all = false, stop = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] {
        return !inbox_.empty() || !aborts_.empty() || stop_ || core_->has_work();
      });
      inbox.swap(inbox_);
      // Until the step publishes the core's queue, the requests taken from
      // the inbox still count against --max-queued-requests.
      waiting_in_core_ += static_cast<int64_t>(inbox.size());
      aborts.swap(aborts_);
      abort_all = abort_all_;
      stop = stop_;
    }
    for (Pending& p : inbox) {
      const std::string id = p.request.id;
      absl::Status s = core_->AddRequest(std::move(p.request), p.stream, p.arrival);
      if (!s.ok()) {  // Submit validated it; this is a bug, but the stream still ends
        TokenEvent event;
        event.kind = TokenEvent::Kind::kFinish;
        event.finish_reason = FinishReason::kError;
        event.error = std::string(s.message());
        p.stream->Push(std::move(event));
        std::lock_guard<std::mutex> lock(mu_);
        live_ids_.erase(id);
      }
    }
    inbox.clear();
    for (const std::string& id : aborts) core_->Abort(id);
    aborts.clear();
    if (abort_all) core_->AbortAll();

    const bool stepped = core_->has_work();
    if (stepped) core_->Step();

    std::vector<std::string> finished = core_->TakeFinishedIds();
    // Before the ids go: whoever sees the engine idle sees exact statistics.
    Publish(/*force=*/!core_->has_work());
    bool idle = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const std::string& id : finished) live_ids_.erase(id);
      waiting_in_core_ = static_cast<int64_t>(core_->scheduler().waiting().size());
      idle = live_ids_.empty();
    }
    if (idle) idle_.notify_all();
    if (stop && !core_->has_work()) {
      std::lock_guard<std::mutex> lock(mu_);
      if (inbox_.empty()) break;
    }
  }
}

}  // namespace fox
