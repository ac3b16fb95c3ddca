// foxserve's Prometheus metrics: vLLM's set, with its meanings and bucket
// layouts, under the prefix fox_ (Prometheus reserves colons for recording
// rules), plus ACP's own (live vs allocated KV blocks, blocks evicted,
// attention key blocks skipped, live fraction per layer). Every series
// carries model_name.
//
// Request histograms are fed by the engine thread as an EngineObserver;
// gauges and the engine's own counters are read from Engine::Stats() when
// /metrics is scraped. Nothing resets on scrape.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

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

  // The exposition text (Prometheus text format 0.0.4) after folding in the
  // engine's statistics (Engine::Stats()). Any thread.
  std::string Scrape(const EngineStats& stats);

  // The bucket boundaries vLLM uses for each histogram (also for tests).
  static std::vector<double> TtftBuckets();
  static std::vector<double> InterTokenBuckets();
  static std::vector<double> RequestLatencyBuckets();
  static std::vector<double> TokenCountBuckets(int64_t max_model_len);

 private:
  void UpdateFromStats(const EngineStats& stats);

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
};

}  // namespace fox
