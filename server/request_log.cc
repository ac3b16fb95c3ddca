#include "server/request_log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace fox {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

absl::StatusOr<LogLevel> ParseLogLevel(const std::string& text) {
  const std::string level = absl::AsciiStrToLower(text);
  if (level == "debug") return LogLevel::kDebug;
  if (level == "info") return LogLevel::kInfo;
  if (level == "warning" || level == "warn") return LogLevel::kWarning;
  if (level == "error") return LogLevel::kError;
  return absl::InvalidArgumentError(
      absl::StrCat("--log-level must be debug, info, warning or error, got ", text));
}

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }

bool IsLogged(LogLevel level) { return static_cast<int>(level) >= g_level.load(); }

void Log(LogLevel level, const std::string& message, nlohmann::json fields) {
  if (!IsLogged(level)) return;
  nlohmann::json line = {
      {"ts", absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone())},
      {"level", LevelName(level)},
      {"msg", message}};
  if (fields.is_object()) line.update(fields);
  std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  text += '\n';
  // One write: a line is never split between threads' output.
  const ssize_t ignored = ::write(STDERR_FILENO, text.data(), text.size());
  (void)ignored;
}

void RequestLog::OnRequestFinished(const std::string& request_id, const std::string& client_id,
                                   const TokenEvent& finish) {
  const bool trouble =
      finish.finish_reason == FinishReason::kAbort || finish.finish_reason == FinishReason::kError;
  const LogLevel level = trouble ? LogLevel::kWarning : LogLevel::kInfo;
  if (!IsLogged(level)) return;
  const RequestTimes& t = finish.times;
  const Clock::time_point end = t.finished.value_or(Clock::now());
  nlohmann::json fields = {
      {"request_id", request_id},
      {"prompt_tokens", finish.prompt_tokens},
      {"generation_tokens", finish.completion_tokens},
      {"ttft_s", t.first_token ? nlohmann::json(Seconds(*t.first_token - t.arrival))
                               : nlohmann::json(nullptr)},
      {"e2e_s", Seconds(end - t.arrival)},
      {"queue_s",
       t.scheduled ? nlohmann::json(Seconds(*t.scheduled - t.arrival)) : nlohmann::json(nullptr)},
      {"finish_reason", std::string(FinishReasonName(finish.finish_reason))},
      {"preemptions", finish.num_preemptions}};
  if (!client_id.empty()) fields["client_request_id"] = client_id;
  if (!finish.error.empty()) fields["error"] = finish.error;
  Log(level, "request finished", std::move(fields));
}

}  // namespace fox
