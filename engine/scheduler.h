// Continuous batching in the manner of vLLM v1. Every request knows how many
// of its tokens are computed and how many exist; each step hands out token
// counts under two limits, so prefill chunks and decodes share a step:
//
//   1. running requests, oldest first: the rest of their tokens, up to the
//      step's remaining token budget. When their blocks do not fit in the
//      pool, the newest running request is preempted (its blocks dropped, to
//      be recomputed later) until they do, or the request itself is the
//      newest and waits;
//   2. if nothing was preempted, waiting requests in FCFS order (preempted
//      ones at the front), while the budget, --max-num-seqs and the pool
//      allow; the first that does not fit stops admission.
//
// A request that cannot get the blocks for its next token even with every
// other request's blocks freed fails (see ScheduleOutput::failed): FoX's
// footprint shrinks as the forget gate decays keys, so a request alone gets
// smaller chunks before that is decided. Blocks are counted live: ACP
// eviction returns blocks between steps and admission sees them at once.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "engine/block_pool.h"
#include "engine/request.h"

namespace fox {

struct SchedulerConfig {
  int64_t max_num_batched_tokens = 2048;  // tokens computed per step, all requests together
  int32_t max_num_seqs = 256;             // requests running at once
};

struct ScheduledRequest {
  Request* request = nullptr;
  int64_t num_tokens = 0;  // tokens to compute this step, from num_computed_tokens on
};

struct ScheduleOutput {
  std::vector<ScheduledRequest> scheduled;  // running ones first, then newly admitted
  std::vector<Request*> preempted;          // moved back to the waiting queue this step
  // Requests that cannot run even alone in the pool; removed from the
  // scheduler with their blocks returned. The engine finishes them with an error.
  std::vector<Request*> failed;
  int64_t num_batched_tokens = 0;
};

// Owns the order of requests and their blocks' allocation, not the requests.
// Engine thread only.
class Scheduler {
 public:
  Scheduler(const SchedulerConfig& config, BlockPool& pool);

  // Appends a new request to the waiting queue.
  void AddWaiting(Request* request);
  // Decides the next step and reserves the blocks it needs.
  ScheduleOutput Schedule();
  // Takes a request out (finished or aborted), returning its blocks.
  void Remove(Request* request);

  const std::deque<Request*>& waiting() const { return waiting_; }
  const std::vector<Request*>& running() const { return running_; }
  const SchedulerConfig& config() const { return config_; }

 private:
  // Reserves blocks so that `request` can compute `num_tokens` more tokens.
  bool Allocate(Request* request, int64_t num_tokens);
  // The most of `num_tokens` that fits in the pool as it is now (0: none).
  int64_t TokensThatFit(const Request* request, int64_t num_tokens) const;
  void Preempt(Request* request, ScheduleOutput* out);
  void Fail(Request* request, ScheduleOutput* out);

  const SchedulerConfig config_;
  BlockPool& pool_;
  std::deque<Request*> waiting_;
  std::vector<Request*> running_;  // admission order: newest last
};

}  // namespace fox
