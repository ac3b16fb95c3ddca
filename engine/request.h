// A request as it enters the engine (EngineRequest, a plain record the front
// ends build), and the engine's own record of it while it lives (Request).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "engine/request_stream.h"
#include "engine/sampler.h"
#include "engine/sampling_params.h"
#include "engine/sequence_blocks.h"
#include "engine/stop_checker.h"
#include "models/incremental_detokenizer.h"
#include "models/sequence_state.h"

namespace fox {

struct EngineRequest {
  std::string id;  // unique among the requests alive in one engine
  std::vector<int32_t> prompt_ids;
  SamplingParams params;
  // The caller's own id for the request (HTTP's X-Request-Id): not unique,
  // not interpreted, only handed to the observers for their log lines.
  std::string client_id;
};

enum class RequestStatus { kWaiting, kRunning, kPreempted, kFinished };

// Owned by the engine thread; nothing here is thread-safe except `stream`.
//
// Token accounting, as in vLLM v1: token_ids holds the prompt and then every
// generated token; num_computed_tokens of them are in the KV cache. A step
// computes some of the rest; when it reaches the end, a new token is
// sampled. Preemption by recompute sets num_computed_tokens back to 0 and
// drops the cache; the tokens, the sampler's generator, the stop checker and
// the detokenizer carry on, so the output continues as if uninterrupted.
struct Request {
  Request(EngineRequest request, const FoxConfig& config, int32_t eos_token_id,
          const Tokenizer* tokenizer, std::shared_ptr<RequestStream> stream,
          Clock::time_point arrival);

  int64_t num_tokens() const { return static_cast<int64_t>(token_ids.size()); }
  int64_t num_output_tokens() const { return num_tokens() - num_prompt_tokens; }

  // Returns every block to `pool` and forgets the cached state (recompute).
  void DropCache(BlockPool& pool);

  std::string id;
  std::string client_id;
  std::vector<int32_t> token_ids;
  int64_t num_prompt_tokens = 0;
  int64_t num_computed_tokens = 0;
  SamplingParams params;
  RequestStatus status = RequestStatus::kWaiting;
  int32_t num_preemptions = 0;

  SequenceState state;   // KV-shift state and L, beside the blocks
  SequenceBlocks blocks;
  TokenHistory history;  // for the penalties
  StopChecker stop;
  std::optional<IncrementalDetokenizer> detokenizer;  // when the engine has a tokenizer
  std::mt19937_64 rng;
  RequestTimes times;
  std::shared_ptr<RequestStream> stream;
};

}  // namespace fox
