// The HTTP routes of the OpenAI-compatible API and the server's own:
//
//   POST /v1/completions, /v1/chat/completions   generation (JSON or SSE)
//   GET  /v1/models                              the served model
//   POST /tokenize, /detokenize                  vLLM's tokenizer routes
//   GET  /health (alive), /ready (engine accepting), /version, /stats,
//        /metrics (Prometheus text format)
//
// Every route but the probes (/health, /ready, /version) needs the API key
// when one is set (401 otherwise); /metrics needs it only with
// metrics_need_api_key. A known path asked with another method gets 405 and
// an Allow header; HEAD is answered as GET without the body. Errors are
// OpenAI error bodies. An X-Request-Id header is echoed on the response and
// logged with the request.
//
// Requests with a body (generation, tokenizer routes) are parsed and
// tokenized on a small pool of worker threads, not on the I/O thread that
// read them, so that a large prompt does not stall the other connections'
// streams.
#pragma once

#include <cstddef>
#include <string>

#include "server/http/http_exchange.h"
#include "server/metrics/server_metrics.h"
#include "server/openai/chat_template.h"
#include "server/serving_context.h"

namespace fox {

struct OpenAiRoutesOptions {
  // --metrics-need-api-key: /metrics, open by default as in vLLM, needs the
  // API key too.
  bool metrics_need_api_key = false;
  // Workers that parse and tokenize request bodies, and how many requests
  // may wait for one (429 past that).
  int num_parse_threads = 2;
  size_t max_queued_parses = 1024;
};

// A handler for HttpServer serving `context` (which must outlive it).
// `metrics` (may be null: no /metrics route) must outlive it too. Destroying
// the handler waits for the requests being parsed.
HttpHandler MakeOpenAiRoutes(ServingContext* context, ChatTemplate chat_template,
                             ServerMetrics* metrics = nullptr,
                             const OpenAiRoutesOptions& options = {});

// `path` as a metrics label: a served path as it is ("/v1/completions"),
// "/v1/models/{model}" for a model card, "other" for anything else, so that
// clients cannot grow the label set.
std::string RouteLabel(const std::string& path);

// The foxserve version reported by /version and the CLI.
inline constexpr char kFoxserveVersion[] = "0.4.0";

}  // namespace fox
