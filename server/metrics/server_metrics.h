// foxserve's Prometheus metrics: vLLM's set, with its meanings and bucket
// layouts, under the prefix fox_ (Prometheus reserves colons for recording
// rules), plus ACP's own (live vs allocated KV blocks, blocks evicted,
// attention key blocks skipped, live fraction per layer). Every series
// carries model_name.
//
// Request histograms are fed by the engine thread as an EngineObserver;
// gauges and the engine's own counters are read from Engine::Stats() when
// /metrics is scraped. Nothing resets on scrape.
//
// Also the HTTP front end's own series, so that 4xx, 5xx and 429 answers
// and dropped streams show on the dashboard: http_requests_total{code,route},
// http_request_duration_seconds{route} and
// fox_http_responses_incomplete_total{reason}; and the process_* series of
// the Prometheus client conventions (memory, descriptors, CPU, start time).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "engine/engine.h"
#include "engine/engine_observer.h"

namespace prometheus {
class Registry;
class Counter;
class Gauge;
class Histogram;
template <typename T>
class Family;
}  // namespace prometheus

namespace fox {

class ServerMetrics : public EngineObserver {
 public:
  // `max_model_len` sizes the token-count histograms' buckets, as vLLM does.
  ServerMetrics(std::string model_name, int64_t max_model_len, int num_layers);
  ~ServerMetrics() override;

  // EngineObserver (engine thread).
  void OnInterTokenLatency(double seconds) override;
  void OnRequestFinished(const std::string& request_id, const std::string& client_id,
                         const TokenEvent& finish) override;

  // One answered HTTP request (any I/O thread). `route` must come from a
  // bounded set (a served path, or "other"): it is a label. `incomplete` is
  // "" when every byte was written, else why not ("client_gone",
  // "write_timeout").
  void OnHttpResponse(absl::string_view route, int code, double seconds,
                      absl::string_view incomplete);

  // The exposition text (Prometheus text format 0.0.4) after folding in the
  // engine's statistics (Engine::Stats()). Any thread.
  std::string Scrape(const EngineStats& stats);

  // The bucket boundaries vLLM uses for each histogram (also for tests).
  static std::vector<double> TtftBuckets();
  static std::vector<double> InterTokenBuckets();
  static std::vector<double> RequestLatencyBuckets();
  static std::vector<double> TokenCountBuckets(int64_t max_model_len);
  static std::vector<double> HttpDurationBuckets();

 private:
  void UpdateFromStats(const EngineStats& stats);
  void UpdateProcessStats();

  const std::string model_name_;
  std::shared_ptr<prometheus::Registry> registry_;

  // Histograms (engine thread; prometheus-cpp's metrics are thread-safe).
  prometheus::Histogram* ttft_;
  prometheus::Histogram* inter_token_;
  prometheus::Histogram* time_per_output_token_;
  prometheus::Histogram* e2e_;
  prometheus::Histogram* queue_;
  prometheus::Histogram* prefill_;
  prometheus::Histogram* decode_;
  prometheus::Histogram* inference_;
  prometheus::Histogram* prompt_tokens_per_request_;
  prometheus::Histogram* generation_tokens_per_request_;
  prometheus::Family<prometheus::Counter>* success_family_;
  prometheus::Family<prometheus::Counter>* http_requests_;
  prometheus::Family<prometheus::Histogram>* http_duration_;
  prometheus::Family<prometheus::Counter>* http_incomplete_;

  // Scrape side: gauges, and counters advanced to the engine's totals.
  std::mutex scrape_mu_;
  prometheus::Gauge* running_;
  prometheus::Gauge* waiting_;
  prometheus::Gauge* kv_usage_;
  prometheus::Gauge* kv_blocks_total_;
  prometheus::Gauge* kv_blocks_free_;
  prometheus::Gauge* kv_blocks_live_;
  prometheus::Gauge* kv_blocks_allocated_;
  std::vector<prometheus::Gauge*> live_fraction_per_layer_;
  prometheus::Counter* preemptions_;
  prometheus::Counter* prompt_tokens_;
  prometheus::Counter* generation_tokens_;
  prometheus::Counter* blocks_evicted_;
  prometheus::Counter* key_blocks_read_;
  prometheus::Counter* key_blocks_skipped_;
  prometheus::Counter* steps_;
  EngineCounters last_counters_;  // the totals already added
  prometheus::Gauge* process_resident_;
  prometheus::Gauge* process_virtual_;
  prometheus::Gauge* process_open_fds_;
  prometheus::Gauge* process_max_fds_;
  prometheus::Gauge* process_start_time_;
  prometheus::Counter* process_cpu_;
  double last_cpu_seconds_ = 0;
};

}  // namespace fox
