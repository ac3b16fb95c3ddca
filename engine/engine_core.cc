#include "engine/engine_core.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"

namespace fox {
namespace {

double SecondsBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::vector<std::vector<float>> EvictionU(const Executor& executor, const EngineConfig& config) {
  if (!config.acp) return {};  // --acp off: no eviction either
  return executor.AcpStaticU();
}

}  // namespace

absl::StatusOr<std::unique_ptr<EngineCore>> EngineCore::Create(std::unique_ptr<Executor> executor,
                                                               const Tokenizer* tokenizer,
                                                               EngineConfig config) {
  if (config.max_model_len == 0) {
    if (tokenizer == nullptr) {
      return absl::InvalidArgumentError("--max-model-len is required without a tokenizer");
    }
    config.max_model_len = tokenizer->model_max_length();
  }
  if (absl::Status s = ValidateEngineConfig(config); !s.ok()) return s;
  return std::unique_ptr<EngineCore>(new EngineCore(std::move(executor), tokenizer, config));
}

absl::StatusOr<std::unique_ptr<EngineCore>> EngineCore::ForCheckpoint(const Checkpoint& model,
                                                                      const Tokenizer* tokenizer,
                                                                      EngineConfig config) {
  ForwardOptions options;
  options.acp = config.acp;
  options.acp_log_eps = static_cast<float>(config.acp_log_eps);
  return Create(
      std::make_unique<CpuExecutor>(model.config, model.weights, options, config.cpu_threads),
      tokenizer, config);
}

EngineCore::EngineCore(std::unique_ptr<Executor> executor, const Tokenizer* tokenizer,
                       const EngineConfig& config)
    : executor_(std::move(executor)),
      tokenizer_(tokenizer),
      config_(config),
      eos_token_id_(tokenizer != nullptr ? tokenizer->eos_id() : executor_->config().eos_token_id),
      pool_(static_cast<int32_t>(config.num_kv_blocks), config.block_size,
            executor_->config().head_dim, config.kv_dtype),
      scheduler_({config.max_num_batched_tokens, config.max_num_seqs}, pool_),
      evictor_(EvictionU(*executor_, config), executor_->config().num_heads, config.max_model_len,
               config.acp_log_eps) {}

absl::Status EngineCore::Validate(const EngineRequest& request) const {
  const FoxConfig& model = executor_->config();
  if (request.id.empty()) return absl::InvalidArgumentError("request id is empty");
  if (request.prompt_ids.empty()) return absl::InvalidArgumentError("prompt is empty");
  for (size_t i = 0; i < request.prompt_ids.size(); ++i) {
    const int32_t id = request.prompt_ids[i];
    if (id < 0 || id >= model.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat("prompt token ", id, " at index ", i,
                                                     " is outside the vocabulary [0, ",
                                                     model.vocab_size, ")"));
    }
  }
  if (absl::Status s = ValidateSamplingParams(request.params, model.vocab_size); !s.ok()) return s;
  if (!request.params.stop.empty() && tokenizer_ == nullptr) {
    return absl::InvalidArgumentError("stop strings need a model with a tokenizer");
  }
  const int64_t prompt_len = static_cast<int64_t>(request.prompt_ids.size());
  // Compared without adding, so that no max_tokens can overflow the sum.
  if (request.params.max_tokens > config_.max_model_len - prompt_len) {
    const int64_t max_tokens = request.params.max_tokens;
    const std::string total = max_tokens <= std::numeric_limits<int64_t>::max() - prompt_len
                                  ? absl::StrCat(prompt_len + max_tokens)
                                  : std::string("more than 2^63");
    return absl::InvalidArgumentError(absl::StrCat(
        "this model's maximum context length is ", config_.max_model_len, " tokens; the request ",
        "asks for ", total, " (", prompt_len, " in the prompt, ", max_tokens, " in max_tokens)"));
  }
  if (!evictor_.enabled()) {
    // Without eviction the footprint only grows: a request the whole pool
    // cannot hold would fail half-way, so it is refused now. (With eviction
    // it may shrink; one that still outgrows the pool ends with an error.)
    const int64_t cached =
        prompt_len + request.params.max_tokens - 1;  // the last token is never computed
    const int64_t blocks = int64_t{model.num_layers} * model.num_heads *
                           ((cached + config_.block_size - 1) / config_.block_size);
    if (blocks > pool_.num_blocks()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the request needs ", blocks, " KV blocks (", prompt_len, " prompt tokens + max_tokens ",
          request.params.max_tokens, "), more than the whole KV cache holds (", pool_.num_blocks(),
          "); raise --kv-cache-memory or lower max_tokens"));
    }
  }
  return absl::OkStatus();
}

absl::Status EngineCore::AddRequest(EngineRequest request, std::shared_ptr<RequestStream> stream,
                                    Clock::time_point arrival) {
  if (absl::Status s = Validate(request); !s.ok()) return s;
  if (requests_.count(request.id) != 0) {
    return absl::AlreadyExistsError(absl::StrCat("request id '", request.id, "' is in use"));
  }
  std::string id = request.id;
  auto owned = std::make_unique<Request>(std::move(request), executor_->config(), eos_token_id_,
                                         tokenizer_, std::move(stream), arrival);
  scheduler_.AddWaiting(owned.get());
  requests_.emplace(std::move(id), std::move(owned));
  return absl::OkStatus();
}

const Request* EngineCore::Find(const std::string& id) const {
  auto it = requests_.find(id);
  return it == requests_.end() ? nullptr : it->second.get();
}

bool EngineCore::Abort(const std::string& id) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return false;
  Request* request = it->second.get();
  StopCheck check;
  check.text = request->stop.Flush();
  check.finish_reason = FinishReason::kAbort;
  Finish(request, check);
  return true;
}

void EngineCore::AbortAll() {
  std::vector<std::string> ids;
  ids.reserve(requests_.size());
  for (const auto& [id, request] : requests_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  for (const std::string& id : ids) Abort(id);
}

void EngineCore::Finish(Request* request, const StopCheck& check, std::string error) {
  scheduler_.Remove(request);  // returns its blocks
  const Clock::time_point now = Clock::now();
  TokenEvent event;
  event.kind = TokenEvent::Kind::kFinish;
  event.text = check.text;
  event.finish_reason = check.finish_reason;
  event.stop_token_id = check.stop_token_id;
  event.stop_string = check.stop_string;
  event.error = std::move(error);
  event.prompt_tokens = request->num_prompt_tokens;
  event.completion_tokens = request->num_output_tokens();
  event.num_preemptions = request->num_preemptions;
  event.times = request->times;
  event.times.finished = now;
  ++counters_.finished[static_cast<int>(check.finish_reason)];
  for (EngineObserver* observer : observers_) observer->OnRequestFinished(request->id, request->client_id, event);
  finished_ids_.push_back(request->id);
  std::shared_ptr<RequestStream> stream = request->stream;
  requests_.erase(requests_.find(request->id));  // destroys *request
  if (stream) stream->Push(std::move(event));
}

bool EngineCore::SampleNext(Request* request, absl::Span<const float> logits) {
  const Clock::time_point now = Clock::now();
  SampledToken token =
      sampler_.Sample(logits, request->params, request->history, eos_token_id_, request->rng);
  request->token_ids.push_back(token.token_id);
  request->history.AddOutput(token.token_id);
  ++counters_.generation_tokens;
  if (!request->times.first_token) {
    request->times.first_token = now;
    counters_.prompt_tokens += request->num_prompt_tokens;
  } else if (!observers_.empty()) {
    const double gap = std::chrono::duration<double>(now - *request->times.last_token).count();
    for (EngineObserver* observer : observers_) observer->OnInterTokenLatency(gap);
  }
  request->times.last_token = now;

  std::string piece;
  if (request->detokenizer) {
    piece = request->detokenizer->Push(token.token_id);
    // The last token: whatever the detokenizer still holds is final now.
    if (request->num_output_tokens() >= request->params.max_tokens) {
      piece += request->detokenizer->Flush();
    }
  }
  StopCheck check = request->stop.Append(token.token_id, piece);

  TokenEvent event;
  event.token_id = token.token_id;
  event.logprob = token.logprob;
  event.top_logprobs = std::move(token.top_logprobs);
  event.text = std::move(check.text);
  check.text.clear();
  if (request->stream) request->stream->Push(std::move(event));
  if (check.finish_reason == FinishReason::kNone) return false;
  Finish(request, check);
  return true;
}

StepResult EngineCore::Step() {
  StepResult result;
  if (requests_.empty()) return result;
  const size_t finished_before = finished_ids_.size();
  const Clock::time_point t0 = Clock::now();

  ScheduleOutput schedule = scheduler_.Schedule();
  result.num_scheduled_requests = static_cast<int64_t>(schedule.scheduled.size());
  result.num_batched_tokens = schedule.num_batched_tokens;
  result.num_preempted = static_cast<int64_t>(schedule.preempted.size());
  counters_.preemptions += result.num_preempted;
  for (Request* request : schedule.failed) {
    StopCheck check;
    check.finish_reason = FinishReason::kError;
    Finish(request, check,
           absl::StrCat("the KV cache (", pool_.num_blocks(), " blocks of ", config_.block_size,
                        " tokens) cannot hold the next token of this request even alone; ",
                        "raise --kv-cache-memory"));
  }
  const Clock::time_point t1 = Clock::now();

  batch_.clear();
  for (const ScheduledRequest& s : schedule.scheduled) {
    Request* r = s.request;
    if (!r->times.scheduled) r->times.scheduled = t1;
    batch_.push_back(ForwardSequence{
        absl::MakeConstSpan(r->token_ids).subspan(r->num_computed_tokens, s.num_tokens), &r->state,
        r->blocks.Views().data(), /*all_logits=*/false});
  }
  const Clock::time_point t2 = Clock::now();

  ForwardCounters forward_counters;
  if (!batch_.empty()) executor_->Execute(batch_, pool_.view(), &logits_, &forward_counters);
  counters_.key_blocks_read += forward_counters.key_blocks_read;
  counters_.key_blocks_skipped += forward_counters.key_blocks_skipped;
  const Clock::time_point t3 = Clock::now();

  const int32_t vocab = executor_->config().vocab_size;
  std::vector<Request*> to_evict;
  to_evict.reserve(schedule.scheduled.size());
  for (size_t i = 0; i < schedule.scheduled.size(); ++i) {
    Request* r = schedule.scheduled[i].request;
    r->num_computed_tokens += schedule.scheduled[i].num_tokens;
    counters_.computed_tokens += schedule.scheduled[i].num_tokens;
    if (r->num_computed_tokens == r->num_tokens() &&
        SampleNext(r, absl::MakeConstSpan(logits_).subspan(i * vocab, vocab))) {
      continue;  // finished; its blocks are back in the pool
    }
    to_evict.push_back(r);
  }
  const Clock::time_point t4 = Clock::now();

  for (Request* r : to_evict)
    counters_.blocks_evicted += evictor_.Evict(r->state, r->blocks, pool_);
  const Clock::time_point t5 = Clock::now();

  ++counters_.steps;
  counters_.schedule_seconds += SecondsBetween(t0, t1);
  counters_.prepare_seconds += SecondsBetween(t1, t2);
  counters_.execute_seconds += SecondsBetween(t2, t3);
  counters_.sample_seconds += SecondsBetween(t3, t4);
  counters_.evict_seconds += SecondsBetween(t4, t5);
  result.finished_ids.assign(finished_ids_.begin() + finished_before, finished_ids_.end());
  return result;
}

EngineStats EngineCore::Stats() const {
  EngineStats stats;
  stats.counters = counters_;
  stats.num_waiting = static_cast<int64_t>(scheduler_.waiting().size());
  stats.num_running = static_cast<int64_t>(scheduler_.running().size());
  stats.kv_blocks_total = pool_.num_blocks();
  stats.kv_blocks_free = pool_.num_free();
  stats.kv_blocks_live = pool_.num_used();
  const FoxConfig& model = executor_->config();
  stats.live_blocks_per_layer.assign(model.num_layers, 0);
  stats.full_blocks_per_layer.assign(model.num_layers, 0);
  for (const auto& [id, request] : requests_) {
    const SequenceBlocks& blocks = request->blocks;
    for (int32_t t = 0; t < blocks.num_tables(); ++t) {
      const int32_t layer = t / model.num_heads;
      const int64_t end = blocks.end_block(t);
      stats.live_blocks_per_layer[layer] += end - blocks.first_live_block(t);
      stats.full_blocks_per_layer[layer] += end;
    }
  }
  for (int64_t n : stats.full_blocks_per_layer) stats.kv_blocks_full += n;
  return stats;
}

}  // namespace fox
