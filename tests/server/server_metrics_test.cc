// ServerMetrics: request histograms from finish events with known times,
// vLLM's bucket layouts, gauges and counters from engine statistics, and
// nothing reset by a scrape.
#include "server/metrics/server_metrics.h"

#include <cstdio>
#include <ctime>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace fox {
namespace {

// The value of the one sample `series` (name and labels as exposed), or -1.
double Sample(const std::string& text, const std::string& series) {
  const size_t at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

TokenEvent Finished(FinishReason reason, double queue_s, double ttft_s, double e2e_s,
                    int64_t prompt_tokens, int64_t completion_tokens) {
  TokenEvent event;
  event.kind = TokenEvent::Kind::kFinish;
  event.finish_reason = reason;
  event.prompt_tokens = prompt_tokens;
  event.completion_tokens = completion_tokens;
  const Clock::time_point t0 = Clock::now();
  auto at = [&](double s) {
    return t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  };
  event.times.arrival = t0;
  event.times.scheduled = at(queue_s);
  event.times.first_token = at(ttft_s);
  event.times.last_token = at(e2e_s);
  event.times.finished = at(e2e_s);
  return event;
}

TEST(ServerMetricsTest, BucketLayoutsAreVllms) {
  EXPECT_EQ(ServerMetrics::TokenCountBuckets(16384),
            (std::vector<double>{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000}));
  EXPECT_EQ(ServerMetrics::TokenCountBuckets(64), (std::vector<double>{1, 2, 5, 10, 20, 50}));
  EXPECT_EQ(ServerMetrics::TtftBuckets().size(), 22u);
  EXPECT_EQ(ServerMetrics::InterTokenBuckets().front(), 0.01);
  EXPECT_EQ(ServerMetrics::RequestLatencyBuckets().back(), 7680.0);
}

TEST(ServerMetricsTest, FinishedRequestsFillTheHistogramsAndCounters) {
  ServerMetrics metrics("m", 16384, 2);
  metrics.OnRequestFinished("a", "", Finished(FinishReason::kLength, 0.5, 1.5, 3.5, 7, 5));
  metrics.OnRequestFinished("b", "", Finished(FinishReason::kStop, 0.1, 0.2, 0.2, 30, 1));
  metrics.OnInterTokenLatency(0.04);
  metrics.OnInterTokenLatency(0.3);
  const std::string text = metrics.Scrape(EngineStats());
  const std::string m = "model_name=\"m\"";
  EXPECT_EQ(Sample(text, "fox_request_success_total{finished_reason=\"length\"," + m + "}"), 1);
  EXPECT_EQ(Sample(text, "fox_request_success_total{finished_reason=\"stop\"," + m + "}"), 1);
  EXPECT_EQ(Sample(text, "fox_request_success_total{finished_reason=\"abort\"," + m + "}"), 0);
  EXPECT_EQ(Sample(text, "fox_e2e_request_latency_seconds_count{" + m + "}"), 2);
  EXPECT_NEAR(Sample(text, "fox_e2e_request_latency_seconds_sum{" + m + "}"), 3.7, 1e-6);
  // e2e 0.2 and 3.5: one at or below 0.3, both at or below 5.
  EXPECT_EQ(Sample(text, "fox_e2e_request_latency_seconds_bucket{" + m + ",le=\"0.3\"}"), 1);
  EXPECT_EQ(Sample(text, "fox_e2e_request_latency_seconds_bucket{" + m + ",le=\"2.5\"}"), 1);
  EXPECT_EQ(Sample(text, "fox_e2e_request_latency_seconds_bucket{" + m + ",le=\"5\"}"), 2);
  EXPECT_NEAR(Sample(text, "fox_time_to_first_token_seconds_sum{" + m + "}"), 1.7, 1e-6);
  EXPECT_NEAR(Sample(text, "fox_request_queue_time_seconds_sum{" + m + "}"), 0.6, 1e-6);
  EXPECT_NEAR(Sample(text, "fox_request_prefill_time_seconds_sum{" + m + "}"), 1.1, 1e-6);
  EXPECT_NEAR(Sample(text, "fox_request_decode_time_seconds_sum{" + m + "}"), 2.0, 1e-6);
  EXPECT_NEAR(Sample(text, "fox_request_inference_time_seconds_sum{" + m + "}"), 3.1, 1e-6);
  // Per-request TPOT only where there is more than one token: 2.0 / 4.
  EXPECT_EQ(Sample(text, "fox_request_time_per_output_token_seconds_count{" + m + "}"), 1);
  EXPECT_NEAR(Sample(text, "fox_request_time_per_output_token_seconds_sum{" + m + "}"), 0.5, 1e-6);
  EXPECT_EQ(Sample(text, "fox_request_prompt_tokens_sum{" + m + "}"), 37);
  EXPECT_EQ(Sample(text, "fox_request_prompt_tokens_bucket{" + m + ",le=\"10\"}"), 1);
  EXPECT_EQ(Sample(text, "fox_request_generation_tokens_sum{" + m + "}"), 6);
  EXPECT_EQ(Sample(text, "fox_inter_token_latency_seconds_count{" + m + "}"), 2);
  EXPECT_EQ(Sample(text, "fox_inter_token_latency_seconds_bucket{" + m + ",le=\"0.05\"}"), 1);
}

TEST(ServerMetricsTest, GaugesFollowTheStatsAndCountersNeverReset) {
  ServerMetrics metrics("m", 1024, 2);
  EngineStats stats;
  stats.num_running = 3;
  stats.num_waiting = 4;
  stats.kv_blocks_total = 200;
  stats.kv_blocks_free = 150;
  stats.kv_blocks_live = 50;
  stats.kv_blocks_full = 80;
  stats.live_blocks_per_layer = {30, 20};
  stats.full_blocks_per_layer = {40, 40};
  stats.counters.generation_tokens = 10;
  stats.counters.blocks_evicted = 30;
  stats.counters.key_blocks_skipped = 7;
  std::string text = metrics.Scrape(stats);
  const std::string m = "{model_name=\"m\"}";
  EXPECT_EQ(Sample(text, "fox_num_requests_running" + m), 3);
  EXPECT_EQ(Sample(text, "fox_num_requests_waiting" + m), 4);
  EXPECT_DOUBLE_EQ(Sample(text, "fox_kv_cache_usage_perc" + m), 0.25);
  EXPECT_EQ(Sample(text, "fox_kv_blocks_capacity" + m), 200);
  EXPECT_EQ(Sample(text, "fox_kv_blocks_live" + m), 50);
  EXPECT_EQ(Sample(text, "fox_kv_blocks_allocated" + m), 80);
  EXPECT_DOUBLE_EQ(Sample(text, "fox_kv_live_fraction{layer=\"0\",model_name=\"m\"}"), 0.75);
  EXPECT_DOUBLE_EQ(Sample(text, "fox_kv_live_fraction{layer=\"1\",model_name=\"m\"}"), 0.5);
  EXPECT_EQ(Sample(text, "fox_generation_tokens_total" + m), 10);

  // A later scrape sees the engine's totals, not increments since the last.
  stats.counters.generation_tokens = 25;
  stats.num_running = 0;
  text = metrics.Scrape(stats);
  EXPECT_EQ(Sample(text, "fox_generation_tokens_total" + m), 25);
  EXPECT_EQ(Sample(text, "fox_kv_blocks_evicted_total" + m), 30);
  EXPECT_EQ(Sample(text, "fox_attention_key_blocks_skipped_total" + m), 7);
  EXPECT_EQ(Sample(text, "fox_num_requests_running" + m), 0);
  text = metrics.Scrape(stats);
  EXPECT_EQ(Sample(text, "fox_generation_tokens_total" + m), 25) << "scraping resets nothing";
}

}  // namespace
}  // namespace fox

namespace fox {
namespace {

TEST(ServerMetricsTest, HttpAnswersAreCountedByCodeAndRoute) {
  ServerMetrics metrics("m", 64, 1);
  metrics.OnHttpResponse("/v1/completions", 200, 0.2, "");
  metrics.OnHttpResponse("/v1/completions", 400, 0.001, "");
  metrics.OnHttpResponse("/v1/completions", 429, 0.001, "");
  metrics.OnHttpResponse("/v1/chat/completions", 200, 3.0, "write_timeout");
  metrics.OnHttpResponse("other", 404, 0.0005, "");
  const std::string text = metrics.Scrape(EngineStats());
  const std::string m = "model_name=\"m\"";
  EXPECT_EQ(Sample(text, "http_requests_total{code=\"200\"," + m + ",route=\"/v1/completions\"}"), 1);
  EXPECT_EQ(Sample(text, "http_requests_total{code=\"400\"," + m + ",route=\"/v1/completions\"}"), 1);
  EXPECT_EQ(Sample(text, "http_requests_total{code=\"429\"," + m + ",route=\"/v1/completions\"}"), 1);
  EXPECT_EQ(Sample(text, "http_requests_total{code=\"404\"," + m + ",route=\"other\"}"), 1);
  EXPECT_EQ(Sample(text, "http_request_duration_seconds_count{" + m + ",route=\"/v1/completions\"}"), 3);
  EXPECT_EQ(Sample(text, "http_request_duration_seconds_bucket{" + m +
                             ",route=\"/v1/completions\",le=\"0.005\"}"),
            2);
  EXPECT_NEAR(Sample(text, "http_request_duration_seconds_sum{" + m + ",route=\"/v1/chat/completions\"}"),
              3.0, 1e-9);
  EXPECT_EQ(Sample(text, "fox_http_responses_incomplete_total{" + m + ",reason=\"write_timeout\"}"), 1);
  EXPECT_EQ(Sample(text, "fox_http_responses_incomplete_total{" + m + ",reason=\"client_gone\"}"), 0);
}

TEST(ServerMetricsTest, ProcessMetricsComeFromProc) {
  ServerMetrics metrics("m", 64, 1);
  // Burn a little CPU and hold a descriptor open so both are visibly > 0.
  volatile double x = 0;
  for (int i = 0; i < 20000000; ++i) x = x + i * 1e-9;
  FILE* held = std::fopen("/proc/self/stat", "r");
  ASSERT_NE(held, nullptr);
  const std::string text = metrics.Scrape(EngineStats());
  std::fclose(held);
  EXPECT_GT(Sample(text, "process_resident_memory_bytes"), 1 << 20) << text;
  EXPECT_GE(Sample(text, "process_virtual_memory_bytes"), Sample(text, "process_resident_memory_bytes"));
  EXPECT_GE(Sample(text, "process_open_fds"), 4);  // stdin, stdout, stderr, `held`
  EXPECT_GE(Sample(text, "process_max_fds"), Sample(text, "process_open_fds"));
  EXPECT_GT(Sample(text, "process_cpu_seconds_total"), 0);
  const double start = Sample(text, "process_start_time_seconds");
  const double now = static_cast<double>(std::time(nullptr));
  EXPECT_GT(start, now - 3600) << "started within the last hour";
  EXPECT_LE(start, now + 1);
  // A counter: a later scrape never goes lower.
  const std::string later = metrics.Scrape(EngineStats());
  EXPECT_GE(Sample(later, "process_cpu_seconds_total"), Sample(text, "process_cpu_seconds_total"));
}

}  // namespace
}  // namespace fox
