// The transport's HttpExchange: a thin, thread-safe facade that forwards each
// call to its connection's strand, plus the on-close bookkeeping. The session
// decides what a call means (it ignores calls from an exchange that is no
// longer the one in progress); the exchange only knows whether the client
// went away and which callback to run when it does.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "server/http/http_exchange.h"

namespace fox {

class HttpSession;

class HttpExchangeImpl : public HttpExchange,
                         public std::enable_shared_from_this<HttpExchangeImpl> {
 public:
  // Keeps `session` (and through it the io_context) alive while the handler
  // holds the exchange, so late calls are safe; they are ignored.
  explicit HttpExchangeImpl(std::shared_ptr<HttpSession> session);
  ~HttpExchangeImpl() override;

  void Respond(HttpResponse response) override;
  void StartStream(std::vector<std::pair<std::string, std::string>> headers) override;
  void Write(std::string bytes) override;
  void EndStream() override;
  void Post(std::function<void()> fn) override;
  void OnClose(std::function<void()> fn) override;
  bool closed() const override { return closed_.load(); }

  // Strand only, called by the session. MarkClosed: the client went away
  // before the response was complete (runs the on-close callback).
  // MarkCompleted: the response was sent; the callback will never run.
  void MarkClosed();
  void MarkCompleted();

 private:
  // Runs `fn(session)` on the strand unless the client is gone or the server
  // has stopped.
  template <class Fn>
  void RunOnStrand(Fn&& fn);

  const std::shared_ptr<HttpSession> session_;
  std::atomic<bool> closed_{false};
  std::atomic<bool> counted_open_{true};  // still counted in the context's open responses

  void CountClosed();
  std::mutex outbox_mutex_;
  std::string outbox_;            // written, not yet handed to the strand
  bool is_flush_posted_ = false;  // a flush of outbox_ is queued on the strand
  // Strand only.
  std::function<void()> on_close_;
  bool completed_ = false;
};

}  // namespace fox
