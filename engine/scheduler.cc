#include "engine/scheduler.h"

#include <algorithm>

#include "kernels/check.h"

namespace fox {

Scheduler::Scheduler(const SchedulerConfig& config, BlockPool& pool)
    : config_(config), pool_(pool) {}

void Scheduler::AddWaiting(Request* request) {
  request->status = RequestStatus::kWaiting;
  waiting_.push_back(request);
}

bool Scheduler::Allocate(Request* request, int64_t num_tokens) {
  return request->blocks.Reserve(pool_, request->num_computed_tokens + num_tokens);
}

int64_t Scheduler::TokensThatFit(const Request* request, int64_t num_tokens) const {
  const int64_t reservable =
      request->blocks.ReservableTokens(pool_.num_free(), pool_.view().block_size);
  return std::clamp<int64_t>(reservable - request->num_computed_tokens, 0, num_tokens);
}

void Scheduler::Preempt(Request* request, ScheduleOutput* out) {
  request->DropCache(pool_);
  request->status = RequestStatus::kPreempted;
  ++request->num_preemptions;
  waiting_.push_front(request);
  out->preempted.push_back(request);
}

void Scheduler::Fail(Request* request, ScheduleOutput* out) {
  request->DropCache(pool_);
  request->status = RequestStatus::kFinished;
  out->failed.push_back(request);
}

ScheduleOutput Scheduler::Schedule() {
  ScheduleOutput out;
  int64_t budget = config_.max_num_batched_tokens;

  // 1. Running requests, oldest first.
  for (size_t i = 0; i < running_.size() && budget > 0; ++i) {
    Request* request = running_[i];
    int64_t num_new = std::min(request->num_tokens() - request->num_computed_tokens, budget);
    FOX_CHECK(num_new > 0, "running request with nothing to compute");
    bool scheduled = true;
    while (!Allocate(request, num_new)) {
      if (running_.size() - 1 > i) {
        // Someone newer holds blocks: take them back.
        Preempt(running_.back(), &out);
        running_.pop_back();
        continue;
      }
      if (i > 0) {  // the request is the newest: it waits for the older ones
        Preempt(request, &out);
        running_.pop_back();
      } else if (int64_t fit = TokensThatFit(request, num_new); fit > 0) {
        num_new = fit;  // alone in the pool: a smaller chunk
        continue;
      } else {
        Fail(request, &out);
        running_.erase(running_.begin());
      }
      scheduled = false;
      break;
    }
    if (!scheduled) break;
    out.scheduled.push_back({request, num_new});
    budget -= num_new;
  }

  // 2. Waiting requests, first come first served, unless this step preempted.
  while (out.preempted.empty() && !waiting_.empty() && budget > 0 &&
         static_cast<int32_t>(running_.size()) < config_.max_num_seqs) {
    Request* request = waiting_.front();
    int64_t num_new = std::min(request->num_tokens() - request->num_computed_tokens, budget);
    if (!Allocate(request, num_new)) {
      if (!running_.empty()) break;  // wait for running requests to free blocks
      const int64_t fit = TokensThatFit(request, num_new);
      if (fit == 0) {
        waiting_.pop_front();
        Fail(request, &out);
        continue;
      }
      num_new = fit;
      FOX_CHECK(Allocate(request, num_new), "a chunk that fits failed to allocate");
    }
    waiting_.pop_front();
    request->status = RequestStatus::kRunning;
    running_.push_back(request);
    out.scheduled.push_back({request, num_new});
    budget -= num_new;
  }

  out.num_batched_tokens = config_.max_num_batched_tokens - budget;
  return out;
}

void Scheduler::Remove(Request* request) {
  if (auto it = std::find(running_.begin(), running_.end(), request); it != running_.end()) {
    running_.erase(it);
  } else if (auto w = std::find(waiting_.begin(), waiting_.end(), request); w != waiting_.end()) {
    waiting_.erase(w);
  }
  request->DropCache(pool_);
  request->status = RequestStatus::kFinished;
}

}  // namespace fox
