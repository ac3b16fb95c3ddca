// foxserve's log: one JSON object per line on stderr, filtered by
// --log-level, and the per-request line written when each request finishes:
//   {"ts":"2026-12-02T10:40:01.123Z","level":"info","msg":"request finished",
//    "request_id":"cmpl-...","prompt_tokens":5,"generation_tokens":16,
//    "ttft_s":0.021,"e2e_s":0.31,"queue_s":0.001,"finish_reason":"length","preemptions":0,
//    "client_request_id":"..."}   (the X-Request-Id the client sent, when it sent one)
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "engine/engine_observer.h"
#include "nlohmann/json.hpp"

namespace fox {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

// "debug", "info", "warning" (or "warn"), "error"; the error names the flag.
absl::StatusOr<LogLevel> ParseLogLevel(const std::string& text);
// Lines below `level` are dropped from now on. Thread-safe.
void SetLogLevel(LogLevel level);
bool IsLogged(LogLevel level);
// Writes {"ts", "level", "msg", ...fields} as one line (one write call, so
// lines from different threads never interleave).
void Log(LogLevel level, const std::string& message,
         nlohmann::json fields = nlohmann::json::object());

// Logs each finished request at info level (abort and error at warning).
class RequestLog : public EngineObserver {
 public:
  void OnInterTokenLatency(double) override {}
  void OnRequestFinished(const std::string& request_id, const std::string& client_id,
                         const TokenEvent& finish) override;
};

}  // namespace fox
