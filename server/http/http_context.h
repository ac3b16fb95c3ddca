// What every connection of one HttpServer shares: the options, the handler,
// the io_context, the TLS context (when serving TLS), and the registry of
// open connections that Stop() closes and --max-connections counts.
// Sessions and exchanges hold it by shared_ptr, so the io_context outlives
// every socket even when a handler keeps an exchange after the server is gone.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "server/http/http_server.h"

namespace fox {

class HttpSession;

class HttpContext {
 public:
  // `options.max_connections` must be resolved (positive). `tls` null: plain TCP.
  HttpContext(HttpServerOptions options, HttpHandler handler,
              std::unique_ptr<boost::asio::ssl::context> tls)
      : options_(std::move(options)), handler_(std::move(handler)), tls_(std::move(tls)) {}

  const HttpServerOptions& options() const { return options_; }
  const HttpHandler& handler() const { return handler_; }
  boost::asio::io_context& io_context() { return io_context_; }
  boost::asio::ssl::context* tls() { return tls_.get(); }

  // Calls options().log when set.
  void Log(const std::string& message,
           const std::vector<std::pair<std::string, std::string>>& fields) const {
    if (options_.log) options_.log(message, fields);
  }

  // Posts `fn` to `executor` unless the server has stopped (then drops it and
  // returns false). Once Stop() has begun nothing new is queued, so no queued
  // handler can keep a session (and this context) alive after the threads end.
  template <class Executor, class Fn>
  bool PostUnlessStopped(const Executor& executor, Fn&& fn) {
    num_posting_.fetch_add(1);
    const bool stopped = stopped_.load();
    if (!stopped) boost::asio::post(executor, std::forward<Fn>(fn));
    num_posting_.fetch_sub(1);
    return !stopped;
  }
  bool stopped() const { return stopped_.load(); }

  // Adds an accepted connection: kServe while fewer than max_connections are
  // served, else kRefuse (registered too, so Stop() closes it, but not
  // counted against the limit: it only answers 503 and goes); kStopped (the
  // caller drops it) once stopping.
  enum class Admission { kServe, kRefuse, kStopped };
  Admission Register(HttpSession* session, std::weak_ptr<HttpSession> weak);
  // Removes a closed connection. Idempotent.
  void Unregister(HttpSession* session);
  // Every open connection, refused ones included.
  int64_t num_connections() const;

  // Responses handed to a handler and not yet completed or abandoned by
  // their client (HttpExchangeImpl counts itself in and out).
  void AddOpenResponse() { num_open_responses_.fetch_add(1); }
  void RemoveOpenResponse() { num_open_responses_.fetch_sub(1); }
  int64_t num_open_responses() const { return num_open_responses_.load(); }

  // Marks the server stopped, waits out posts in progress, and returns the
  // open connections for the caller to close.
  std::vector<std::shared_ptr<HttpSession>> BeginStop();

 private:
  const HttpServerOptions options_;
  const HttpHandler handler_;
  const std::unique_ptr<boost::asio::ssl::context> tls_;
  boost::asio::io_context io_context_;

  std::atomic<bool> stopped_{false};
  std::atomic<int> num_posting_{0};
  std::atomic<int64_t> num_open_responses_{0};
  mutable std::mutex mutex_;
  struct Entry {
    std::weak_ptr<HttpSession> session;
    bool is_served;  // counted against max_connections
  };
  std::unordered_map<HttpSession*, Entry> sessions_;  // guarded by mutex_
  int64_t num_served_ = 0;                            // guarded by mutex_
};

}  // namespace fox
