#include "server/metrics/server_metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <chrono>

#include "server/metrics/process_stats.h"

namespace fox {
namespace {

using prometheus::Histogram;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

template <typename Builder>
auto& Named(Builder builder, const char* name, const char* help, const std::string& model,
            prometheus::Registry& registry) {
  return builder.Name(name).Help(help).Labels({{"model_name", model}}).Register(registry);
}

}  // namespace

std::vector<double> ServerMetrics::TtftBuckets() {
  return {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,  0.25,  0.5,   0.75,
          1.0,   2.5,   5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0};
}

std::vector<double> ServerMetrics::InterTokenBuckets() {
  return {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,  0.3,  0.4, 0.5,
          0.75, 1.0,   2.5,  5.0,   7.5, 10.0, 20.0, 40.0, 80.0};
}

std::vector<double> ServerMetrics::HttpDurationBuckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0};
}

std::vector<double> ServerMetrics::RequestLatencyBuckets() {
  return {0.3,  0.5,  0.8,  1.0,  1.5,   2.0,   2.5,   5.0,   10.0,   15.0,  20.0,
          30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};
}

// vLLM's build_1_2_5_buckets: 1, 2, 5, 10, 20, 50, ... up to max_model_len.
std::vector<double> ServerMetrics::TokenCountBuckets(int64_t max_model_len) {
  std::vector<double> buckets;
  for (int64_t scale = 1;; scale *= 10) {
    for (const int64_t m : {1, 2, 5}) {
      if (m * scale > max_model_len) return buckets;
      buckets.push_back(static_cast<double>(m * scale));
    }
  }
}

ServerMetrics::ServerMetrics(std::string model_name, int64_t max_model_len, int num_layers)
    : model_name_(std::move(model_name)), registry_(std::make_shared<prometheus::Registry>()) {
  prometheus::Registry& r = *registry_;
  const std::string& m = model_name_;
  auto histogram = [&](const char* name, const char* help, std::vector<double> buckets) {
    return &prometheus::BuildHistogram().Name(name).Help(help).Register(r).Add(
        {{"model_name", m}}, Histogram::BucketBoundaries(std::move(buckets)));
  };
  ttft_ = histogram("fox_time_to_first_token_seconds",
                    "Histogram of time to first token in seconds.", TtftBuckets());
  inter_token_ = histogram("fox_inter_token_latency_seconds",
                           "Histogram of inter-token latency in seconds.", InterTokenBuckets());
  time_per_output_token_ = histogram(
      "fox_request_time_per_output_token_seconds",
      "Histogram of time_per_output_token_seconds per request: decode time over output tokens - 1.",
      InterTokenBuckets());
  e2e_ = histogram("fox_e2e_request_latency_seconds",
                   "Histogram of e2e request latency in seconds.", RequestLatencyBuckets());
  queue_ =
      histogram("fox_request_queue_time_seconds",
                "Histogram of time spent in WAITING phase for request.", RequestLatencyBuckets());
  prefill_ =
      histogram("fox_request_prefill_time_seconds",
                "Histogram of time spent in PREFILL phase for request.", RequestLatencyBuckets());
  decode_ =
      histogram("fox_request_decode_time_seconds",
                "Histogram of time spent in DECODE phase for request.", RequestLatencyBuckets());
  inference_ =
      histogram("fox_request_inference_time_seconds",
                "Histogram of time spent in RUNNING phase for request.", RequestLatencyBuckets());
  prompt_tokens_per_request_ =
      histogram("fox_request_prompt_tokens", "Number of prefill tokens processed.",
                TokenCountBuckets(max_model_len));
  generation_tokens_per_request_ =
      histogram("fox_request_generation_tokens", "Number of generation tokens processed.",
                TokenCountBuckets(max_model_len));
  success_family_ = &prometheus::BuildCounter()
                         .Name("fox_request_success_total")
                         .Help("Count of successfully processed requests, by finish reason.")
                         .Register(r);
  for (const char* reason : {"stop", "length", "abort", "error"}) {
    success_family_->Add({{"model_name", m}, {"finished_reason", reason}});
  }

  auto gauge = [&](const char* name, const char* help) {
    return &prometheus::BuildGauge().Name(name).Help(help).Register(r).Add({{"model_name", m}});
  };
  running_ = gauge("fox_num_requests_running", "Number of requests in model execution batches.");
  waiting_ = gauge("fox_num_requests_waiting", "Number of requests waiting to be processed.");
  kv_usage_ = gauge("fox_kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.");
  kv_blocks_total_ =
      gauge("fox_kv_blocks_capacity", "KV blocks in the pool (one layer, one head each).");
  kv_blocks_free_ = gauge("fox_kv_blocks_free", "KV blocks free in the pool.");
  kv_blocks_live_ = gauge("fox_kv_blocks_live", "KV blocks held by requests now.");
  kv_blocks_allocated_ = gauge("fox_kv_blocks_allocated",
                               "KV blocks the running requests would hold without ACP eviction "
                               "(every block they allocated).");
  auto& fraction = prometheus::BuildGauge()
                       .Name("fox_kv_live_fraction")
                       .Help("Live over allocated KV blocks of the running requests, per layer.")
                       .Register(r);
  for (int layer = 0; layer < num_layers; ++layer) {
    live_fraction_per_layer_.push_back(
        &fraction.Add({{"model_name", m}, {"layer", std::to_string(layer)}}));
  }
  auto counter = [&](const char* name, const char* help) {
    return &prometheus::BuildCounter().Name(name).Help(help).Register(r).Add({{"model_name", m}});
  };
  preemptions_ =
      counter("fox_num_preemptions_total", "Cumulative number of preemption from the engine.");
  prompt_tokens_ = counter("fox_prompt_tokens_total", "Number of prefill tokens processed.");
  generation_tokens_ =
      counter("fox_generation_tokens_total", "Number of generation tokens processed.");
  blocks_evicted_ = counter("fox_kv_blocks_evicted_total",
                            "KV blocks freed by ACP eviction (keys decayed below the threshold).");
  key_blocks_read_ = counter("fox_attention_key_blocks_read_total",
                             "Attention (query, head, key block) visits computed.");
  key_blocks_skipped_ = counter("fox_attention_key_blocks_skipped_total",
                                "Attention (query, head, key block) visits skipped by ACP.");
  steps_ = counter("fox_engine_steps_total", "Engine steps run.");

  http_requests_ = &prometheus::BuildCounter()
                        .Name("http_requests_total")
                        .Help("HTTP requests answered, by status code and route.")
                        .Register(r);
  http_duration_ = &prometheus::BuildHistogram()
                        .Name("http_request_duration_seconds")
                        .Help("Time from a request's complete head to the end of its response.")
                        .Register(r);
  http_incomplete_ = &prometheus::BuildCounter()
                          .Name("fox_http_responses_incomplete_total")
                          .Help("HTTP responses that ended before every byte was written: the "
                                "client went away, or read nothing for --write-timeout.")
                          .Register(r);
  for (const char* reason : {"client_gone", "write_timeout"}) {
    http_incomplete_->Add({{"model_name", m}, {"reason", reason}});
  }

  // The Prometheus client conventions' process metrics: no model label.
  auto process_gauge = [&](const char* name, const char* help) {
    return &prometheus::BuildGauge().Name(name).Help(help).Register(r).Add({});
  };
  process_resident_ = process_gauge("process_resident_memory_bytes", "Resident memory size in bytes.");
  process_virtual_ = process_gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.");
  process_open_fds_ = process_gauge("process_open_fds", "Number of open file descriptors.");
  process_max_fds_ = process_gauge("process_max_fds", "Maximum number of open file descriptors.");
  process_start_time_ = process_gauge("process_start_time_seconds",
                                      "Start time of the process since unix epoch in seconds.");
  process_cpu_ = &prometheus::BuildCounter()
                      .Name("process_cpu_seconds_total")
                      .Help("Total user and system CPU time spent in seconds.")
                      .Register(r)
                      .Add({});
}

void ServerMetrics::OnHttpResponse(absl::string_view route, int code, double seconds,
                                   absl::string_view incomplete) {
  const std::string route_label(route);
  http_requests_
      ->Add({{"model_name", model_name_}, {"code", std::to_string(code)}, {"route", route_label}})
      .Increment();
  http_duration_
      ->Add({{"model_name", model_name_}, {"route", route_label}},
            Histogram::BucketBoundaries(HttpDurationBuckets()))
      .Observe(seconds);
  if (!incomplete.empty()) {
    http_incomplete_->Add({{"model_name", model_name_}, {"reason", std::string(incomplete)}})
        .Increment();
  }
}

void ServerMetrics::UpdateProcessStats() {
  absl::StatusOr<ProcessStats> s = ReadProcessStats();
  if (!s.ok()) return;  // no /proc: the series stay at 0
  process_resident_->Set(static_cast<double>(s->resident_memory_bytes));
  process_virtual_->Set(static_cast<double>(s->virtual_memory_bytes));
  process_open_fds_->Set(static_cast<double>(s->open_fds));
  process_max_fds_->Set(static_cast<double>(s->max_fds));
  process_start_time_->Set(s->start_time_seconds);
  if (s->cpu_seconds > last_cpu_seconds_) {
    process_cpu_->Increment(s->cpu_seconds - last_cpu_seconds_);
    last_cpu_seconds_ = s->cpu_seconds;
  }
}

ServerMetrics::~ServerMetrics() = default;

void ServerMetrics::OnInterTokenLatency(double seconds) { inter_token_->Observe(seconds); }

void ServerMetrics::OnRequestFinished(const std::string&, const std::string&,
                                      const TokenEvent& finish) {
  const RequestTimes& t = finish.times;
  const Clock::time_point finished = t.finished.value_or(Clock::now());
  e2e_->Observe(Seconds(finished - t.arrival));
  if (t.scheduled) queue_->Observe(Seconds(*t.scheduled - t.arrival));
  if (t.first_token) {
    ttft_->Observe(Seconds(*t.first_token - t.arrival));
    if (t.scheduled) prefill_->Observe(Seconds(*t.first_token - *t.scheduled));
    if (t.last_token) {
      const double decode = Seconds(*t.last_token - *t.first_token);
      decode_->Observe(decode);
      if (finish.completion_tokens > 1) {
        time_per_output_token_->Observe(decode / static_cast<double>(finish.completion_tokens - 1));
      }
      if (t.scheduled) inference_->Observe(Seconds(*t.last_token - *t.scheduled));
    }
  }
  prompt_tokens_per_request_->Observe(static_cast<double>(finish.prompt_tokens));
  generation_tokens_per_request_->Observe(static_cast<double>(finish.completion_tokens));
  const std::string reason = finish.finish_reason == FinishReason::kNone
                                 ? std::string("error")
                                 : std::string(FinishReasonName(finish.finish_reason));
  success_family_->Add({{"model_name", model_name_}, {"finished_reason", reason}}).Increment();
}

void ServerMetrics::UpdateFromStats(const EngineStats& stats) {
  running_->Set(static_cast<double>(stats.num_running));
  waiting_->Set(static_cast<double>(stats.num_waiting));
  kv_blocks_total_->Set(static_cast<double>(stats.kv_blocks_total));
  kv_blocks_free_->Set(static_cast<double>(stats.kv_blocks_free));
  kv_blocks_live_->Set(static_cast<double>(stats.kv_blocks_live));
  kv_blocks_allocated_->Set(static_cast<double>(stats.kv_blocks_full));
  kv_usage_->Set(stats.kv_blocks_total > 0
                     ? 1.0 - static_cast<double>(stats.kv_blocks_free) / stats.kv_blocks_total
                     : 0.0);
  for (size_t layer = 0; layer < live_fraction_per_layer_.size(); ++layer) {
    const bool known = layer < stats.live_blocks_per_layer.size() &&
                       layer < stats.full_blocks_per_layer.size() &&
                       stats.full_blocks_per_layer[layer] > 0;
    live_fraction_per_layer_[layer]->Set(
        known ? static_cast<double>(stats.live_blocks_per_layer[layer]) /
                    static_cast<double>(stats.full_blocks_per_layer[layer])
              : 1.0);
  }
  // The engine's counters only grow; add what they grew by since the last scrape.
  const EngineCounters& c = stats.counters;
  auto advance = [](prometheus::Counter* counter, int64_t now, int64_t& last) {
    if (now > last) counter->Increment(static_cast<double>(now - last));
    last = std::max(last, now);
  };
  advance(preemptions_, c.preemptions, last_counters_.preemptions);
  advance(prompt_tokens_, c.prompt_tokens, last_counters_.prompt_tokens);
  advance(generation_tokens_, c.generation_tokens, last_counters_.generation_tokens);
  advance(blocks_evicted_, c.blocks_evicted, last_counters_.blocks_evicted);
  advance(key_blocks_read_, c.key_blocks_read, last_counters_.key_blocks_read);
  advance(key_blocks_skipped_, c.key_blocks_skipped, last_counters_.key_blocks_skipped);
  advance(steps_, c.steps, last_counters_.steps);
}

std::string ServerMetrics::Scrape(const EngineStats& stats) {
  std::lock_guard<std::mutex> lock(scrape_mu_);
  UpdateFromStats(stats);
  UpdateProcessStats();
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace fox
