// One engine step at a time, on the caller's thread: the scheduler, the KV
// pool and its ACP evictor, the executor and the sampler, wired together.
// engine.h runs it on its own thread; tests drive it step by step.
//
//   Step():  Schedule -> blocks reserved, preemptions
//            Execute  -> one logits row per scheduled request
//            for requests whose tokens are all computed: sample, detokenize,
//              check stops, push a token event (and a finish event)
//            evict: each surviving request's tables free the blocks ACP
//              proved dead, straight back to the pool
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/acp_eviction.h"
#include "engine/block_pool.h"
#include "engine/engine_config.h"
#include "engine/engine_observer.h"
#include "engine/executor.h"
#include "engine/request.h"
#include "engine/sampler.h"
#include "engine/scheduler.h"
#include "models/checkpoint.h"
#include "models/tokenizer.h"

namespace fox {

// Cumulative since the engine started; nothing resets them.
struct EngineCounters {
  int64_t steps = 0;
  int64_t preemptions = 0;
  int64_t blocks_evicted = 0;         // returned to the pool by ACP eviction
  int64_t key_blocks_read = 0;        // attention: (query, head, key block) visits
  int64_t key_blocks_skipped = 0;     // ... skipped below the per-step threshold
  int64_t prompt_tokens = 0;          // of requests that reached their first token
  int64_t generation_tokens = 0;      // tokens sampled
  int64_t computed_tokens = 0;        // tokens run through the model, recompute included
  std::array<int64_t, 5> finished{};  // requests finished, indexed by FinishReason
  // Time spent per phase of Step. Bookkeeping = schedule + prepare + evict.
  double schedule_seconds = 0;  // Scheduler::Schedule (block allocation included)
  double prepare_seconds = 0;   // building the batch and its block-table views
  double execute_seconds = 0;   // the forward pass
  double sample_seconds = 0;    // sampling, detokenizing, stop checks, events
  double evict_seconds = 0;     // ACP eviction

  int64_t finished_by(FinishReason reason) const { return finished[static_cast<int>(reason)]; }
};

// A snapshot of the engine's state.
struct EngineStats {
  EngineCounters counters;
  int64_t num_waiting = 0;  // queued, preempted ones included
  int64_t num_running = 0;
  int64_t kv_blocks_total = 0;
  int64_t kv_blocks_free = 0;
  int64_t kv_blocks_live = 0;  // held by requests now
  // Blocks the running requests would hold without eviction: every logical
  // block they ever allocated.
  int64_t kv_blocks_full = 0;
  std::vector<int64_t> live_blocks_per_layer;  // [layers]
  std::vector<int64_t> full_blocks_per_layer;  // [layers]
};

struct StepResult {
  int64_t num_scheduled_requests = 0;
  int64_t num_batched_tokens = 0;
  int64_t num_preempted = 0;
  std::vector<std::string> finished_ids;  // requests that sent their finish event this step
};

class EngineCore {
 public:
  // `tokenizer` may be null (then no text, and stop strings are refused); it
  // must outlive the engine. `config.max_model_len` 0 takes the tokenizer's
  // model_max_length.
  static absl::StatusOr<std::unique_ptr<EngineCore>> Create(std::unique_ptr<Executor> executor,
                                                            const Tokenizer* tokenizer,
                                                            EngineConfig config);
  // A CPU engine over a loaded checkpoint (which must outlive it).
  static absl::StatusOr<std::unique_ptr<EngineCore>> ForCheckpoint(const Checkpoint& model,
                                                                   const Tokenizer* tokenizer,
                                                                   EngineConfig config);

  // Whether `request` may be admitted: InvalidArgument naming the problem
  // (empty prompt, token ids outside the vocabulary, a sampling parameter,
  // prompt + max_tokens over max_model_len). Reads only constant state, so
  // any thread may call it.
  absl::Status Validate(const EngineRequest& request) const;
  // Validates and queues a request; its events go to `stream`. Also refuses
  // an id already alive (AlreadyExists).
  absl::Status AddRequest(EngineRequest request, std::shared_ptr<RequestStream> stream,
                          Clock::time_point arrival = Clock::now());
  // Ends a request with an abort event and returns its blocks. False when no
  // such request is alive.
  bool Abort(const std::string& id);
  void AbortAll();

  // Reports to `observer` too from now on; it must outlive the core. Call
  // before the core runs on an engine thread.
  void AddObserver(EngineObserver* observer) { observers_.push_back(observer); }

  // Runs one step; does nothing when no request is alive.
  StepResult Step();

  // Ids of the requests that sent their finish event since the last call
  // (Step's result lists those of its own step as well).
  std::vector<std::string> TakeFinishedIds() { return std::exchange(finished_ids_, {}); }

  bool has_work() const { return !requests_.empty(); }
  int64_t num_requests() const { return static_cast<int64_t>(requests_.size()); }
  EngineStats Stats() const;
  const EngineConfig& config() const { return config_; }
  const FoxConfig& model_config() const { return executor_->config(); }
  const BlockPool& pool() const { return pool_; }
  const Scheduler& scheduler() const { return scheduler_; }
  const AcpEvictor& evictor() const { return evictor_; }
  // The live request with this id, or null (tests and debugging).
  const Request* Find(const std::string& id) const;
  int32_t eos_token_id() const { return eos_token_id_; }

 private:
  EngineCore(std::unique_ptr<Executor> executor, const Tokenizer* tokenizer,
             const EngineConfig& config);

  // Samples the next token of `request` from its logits row; true when that
  // finished the request (which is then gone).
  bool SampleNext(Request* request, absl::Span<const float> logits);
  // Sends the finish event, returns the blocks and forgets the request.
  void Finish(Request* request, const StopCheck& check, std::string error = {});

  std::unique_ptr<Executor> executor_;
  const Tokenizer* tokenizer_;
  std::vector<EngineObserver*> observers_;
  const EngineConfig config_;
  const int32_t eos_token_id_;
  BlockPool pool_;
  Scheduler scheduler_;
  AcpEvictor evictor_;
  Sampler sampler_;
  std::unordered_map<std::string, std::unique_ptr<Request>> requests_;
  EngineCounters counters_;
  std::vector<std::string> finished_ids_;  // since the last TakeFinishedIds

  std::vector<ForwardSequence> batch_;
  std::vector<float> logits_;
};

}  // namespace fox
