// What every connection of one HttpServer shares: the options, the handler,
// the io_context, and the registry of open connections that Stop() closes.
// Sessions and exchanges hold it by shared_ptr, so the io_context outlives
// every socket even when a handler keeps an exchange after the server is gone.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "server/http/http_server.h"

namespace fox {

class HttpSession;

class HttpContext {
 public:
  HttpContext(HttpServerOptions options, HttpHandler handler)
      : options_(std::move(options)), handler_(std::move(handler)) {}

  const HttpServerOptions& options() const { return options_; }
  const HttpHandler& handler() const { return handler_; }
  boost::asio::io_context& io_context() { return io_context_; }

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

  // Adds an accepted connection; false (caller drops it) once stopping.
  bool Register(HttpSession* session, std::weak_ptr<HttpSession> weak);
  // Removes a closed connection. Idempotent.
  void Unregister(HttpSession* session);
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
  boost::asio::io_context io_context_;

  std::atomic<bool> stopped_{false};
  std::atomic<int> num_posting_{0};
  std::atomic<int64_t> num_open_responses_{0};
  mutable std::mutex mutex_;
  std::unordered_map<HttpSession*, std::weak_ptr<HttpSession>> sessions_;  // guarded by mutex_
};

}  // namespace fox
