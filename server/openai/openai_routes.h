// The HTTP routes of the OpenAI-compatible API and the server's own:
//
//   POST /v1/completions, /v1/chat/completions   generation (JSON or SSE)
//   GET  /v1/models                              the served model
//   POST /tokenize, /detokenize                  vLLM's tokenizer routes
//   GET  /health (alive), /ready (engine accepting), /version, /stats,
//        /metrics (Prometheus text format)
//
// /v1/* and the tokenizer routes need the API key when one is set (401
// otherwise); the probes and /stats never do. Errors are OpenAI error bodies.
#pragma once

#include "server/http/http_exchange.h"
#include "server/metrics/server_metrics.h"
#include "server/openai/chat_template.h"
#include "server/serving_context.h"

namespace fox {

// A handler for HttpServer serving `context` (which must outlive it).
// `metrics` (may be null: no /metrics route) must outlive it too.
HttpHandler MakeOpenAiRoutes(ServingContext* context, ChatTemplate chat_template,
                             ServerMetrics* metrics = nullptr);

// The foxserve version reported by /version and the CLI.
inline constexpr char kFoxserveVersion[] = "0.4.0";

}  // namespace fox
