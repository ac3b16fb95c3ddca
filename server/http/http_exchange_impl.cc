// HttpExchangeImpl: forwards to the session's strand; runs on-close once.
#include "server/http/http_exchange_impl.h"

#include "server/http/http_session.h"

namespace fox {

HttpExchangeImpl::HttpExchangeImpl(std::shared_ptr<HttpSession> session)
    : session_(std::move(session)) {
  session_->context().AddOpenResponse();
}

HttpExchangeImpl::~HttpExchangeImpl() { CountClosed(); }

void HttpExchangeImpl::CountClosed() {
  if (counted_open_.exchange(false)) session_->context().RemoveOpenResponse();
}

template <class Fn>
void HttpExchangeImpl::RunOnStrand(Fn&& fn) {
  if (closed_.load()) return;
  // Capturing ourselves keeps the pointer the session compares against from
  // being reused by a later exchange before this call runs.
  session_->context().PostUnlessStopped(
      session_->executor(), [self = shared_from_this(), fn = std::forward<Fn>(fn)]() mutable {
        fn(*self->session_, self.get());
      });
}

void HttpExchangeImpl::Respond(HttpResponse response) {
  RunOnStrand(
      [response = std::move(response)](HttpSession& session, HttpExchangeImpl* self) mutable {
        session.Respond(self, std::move(response));
      });
}

void HttpExchangeImpl::StartStream(std::vector<std::pair<std::string, std::string>> headers) {
  RunOnStrand([headers = std::move(headers)](HttpSession& session, HttpExchangeImpl* self) mutable {
    session.StartStream(self, std::move(headers));
  });
}

// Writes collect in outbox_ and one flush per batch goes to the strand: a
// fast producer costs one queued handler, not one per event, and the strand
// queue cannot grow without bound behind a slow client.
void HttpExchangeImpl::Write(std::string bytes) {
  if (closed_.load() || bytes.empty()) return;
  {
    std::lock_guard<std::mutex> lock(outbox_mutex_);
    if (outbox_.empty()) {
      outbox_ = std::move(bytes);
    } else {
      outbox_ += bytes;
    }
    if (is_flush_posted_) return;
    is_flush_posted_ = true;
  }
  RunOnStrand([](HttpSession& session, HttpExchangeImpl* self) {
    std::string bytes;
    {
      std::lock_guard<std::mutex> lock(self->outbox_mutex_);
      bytes.swap(self->outbox_);
      self->is_flush_posted_ = false;
    }
    session.Write(self, std::move(bytes));
  });
}

void HttpExchangeImpl::EndStream() {
  RunOnStrand([](HttpSession& session, HttpExchangeImpl* self) { session.EndStream(self); });
}

void HttpExchangeImpl::Post(std::function<void()> fn) {
  session_->context().PostUnlessStopped(session_->executor(), std::move(fn));
}

void HttpExchangeImpl::OnClose(std::function<void()> fn) {
  if (!fn) return;
  auto set = [self = shared_from_this(), fn]() mutable {
    if (self->closed_.load()) return fn();  // already gone: run it now
    if (!self->completed_) self->on_close_ = std::move(fn);
  };
  if (!session_->context().PostUnlessStopped(session_->executor(), std::move(set)) &&
      closed_.load()) {
    // Stopped: no strand runs any more, so nothing can race with this call.
    fn();
  }
}

void HttpExchangeImpl::MarkClosed() {
  CountClosed();
  if (closed_.exchange(true) || completed_) return;
  if (auto fn = std::move(on_close_)) {
    on_close_ = nullptr;
    fn();
  }
}

void HttpExchangeImpl::MarkCompleted() {
  CountClosed();
  completed_ = true;
  on_close_ = nullptr;
}

}  // namespace fox
