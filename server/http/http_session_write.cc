// HttpSession, response side: the handler's answers (complete responses and
// chunked event streams), the single-write-in-flight pump that batches stream
// bytes, the write timeout and the unsent-bytes cap, the keep-alive comments,
// and what follows a finished answer.
#include <boost/beast/core/buffer_traits.hpp>
#include <cstdio>
#include <cstring>

#include "server/http/http_exchange_impl.h"
#include "server/http/http_session.h"

namespace fox {
namespace asio = boost::asio;
using boost::system::error_code;

namespace {
constexpr char kKeepAliveComment[] = ": keep-alive\n\n";

std::string Milliseconds(std::chrono::milliseconds duration) {
  return std::to_string(duration.count()) + " ms";
}
}  // namespace

void HttpSession::Respond(HttpExchangeImpl* exchange, HttpResponse response) {
  if (phase_ != Phase::kResponding || exchange != exchange_.get() || answer_ != Answer::kNone) {
    return;
  }
  SendResponse(std::move(response));
}

void HttpSession::StartStream(HttpExchangeImpl* exchange, HttpHeaders headers) {
  if (phase_ != Phase::kResponding || exchange != exchange_.get() || answer_ != Answer::kNone) {
    return;
  }
  answer_ = Answer::kStream;
  if (record_) record_->status = 200;
  if (version_ < 11) keep_alive_ = false;  // no chunking: the stream ends with the connection
  stream_head_ = HeadBytes(MakeStreamHead(version_, keep_alive_, headers, cors_headers_));
  is_head_written_ = false;
  is_end_requested_ = false;
  last_stream_write_ = std::chrono::steady_clock::now();
  if (!is_head_request_) ArmKeepAlive(context_->options().keep_alive_interval);
  Pump();
}

void HttpSession::Write(HttpExchangeImpl* exchange, std::string bytes) {
  if (phase_ != Phase::kResponding || exchange != exchange_.get() || answer_ != Answer::kStream ||
      is_end_requested_ || bytes.empty()) {
    return;
  }
  last_stream_write_ = std::chrono::steady_clock::now();
  if (is_head_request_) return;  // HEAD: the stream's head only
  if (pending_.empty()) {
    pending_ = std::move(bytes);
  } else {
    pending_ += bytes;
  }
  // Only bytes queued behind a write that has not finished count: a client
  // that keeps up never trips this, however large one event is.
  const size_t limit = context_->options().max_unsent_bytes;
  if (is_writing_ && num_unsent_bytes() > limit) {
    return DropSlowClient("the client has not taken " + std::to_string(num_unsent_bytes()) +
                          " bytes of the stream, over the limit of " + std::to_string(limit));
  }
  Pump();
}

void HttpSession::EndStream(HttpExchangeImpl* exchange) {
  if (phase_ != Phase::kResponding || exchange != exchange_.get() || answer_ != Answer::kStream ||
      is_end_requested_) {
    return;
  }
  is_end_requested_ = true;
  Pump();
}

void HttpSession::SendResponse(HttpResponse response) {
  answer_ = Answer::kFull;
  if (record_) record_->status = response.status;
  full_response_.emplace(
      ToBeastResponse(std::move(response), version_, keep_alive_, cors_headers_));
  Pump();
}

// At most one write is in flight; whatever the handler adds meanwhile waits in
// pending_ and goes out as one chunk when the write completes, so a busy
// connection makes few, large writes instead of one per token.
void HttpSession::Pump() {
  if (is_writing_ || phase_ != Phase::kResponding) return;
  if (answer_ == Answer::kFull) {
    // HEAD: the head says the GET body's Content-Length; the body stays here.
    out_body_.clear();
    if (!is_head_request_) out_body_.swap(full_response_->body());
    return StartWrite(WriteKind::kLast, HeadBytes(full_response_->base()), "");
  }
  if (answer_ != Answer::kStream) return;
  if (!is_head_written_) {
    is_head_written_ = true;
    out_body_.clear();
    return StartWrite(WriteKind::kPart, std::move(stream_head_), "");
  }
  const bool is_chunked = version_ >= 11 && !is_head_request_;
  if (!pending_.empty()) {
    out_body_.clear();
    out_body_.swap(pending_);  // pending_ keeps the old buffer's capacity
    if (!is_chunked) return StartWrite(WriteKind::kPart, "", "");
    char size_line[24];
    std::snprintf(size_line, sizeof(size_line), "%zx\r\n", out_body_.size());
    if (is_end_requested_) {  // the last events and the end in one write
      return StartWrite(WriteKind::kLast, size_line, "\r\n0\r\n\r\n");
    }
    return StartWrite(WriteKind::kPart, size_line, "\r\n");
  }
  if (!is_end_requested_) return;
  if (!is_chunked) return FinishResponse();
  out_body_.clear();
  StartWrite(WriteKind::kLast, "", "0\r\n\r\n");
}

// Writes out_head_, out_body_ (set by the caller) and `tail` (static) with
// write_some calls, so that every byte the client takes counts as progress
// for the write timeout, however long the whole write takes.
void HttpSession::StartWrite(WriteKind kind, std::string head, const char* tail) {
  writing_kind_ = kind;
  out_head_ = std::move(head);
  out_.emplace(std::array<asio::const_buffer, 3>{asio::buffer(out_head_), asio::buffer(out_body_),
                                                 asio::buffer(tail, std::strlen(tail))});
  is_writing_ = true;
  last_write_progress_ = std::chrono::steady_clock::now();
  if (!is_write_timer_armed_) ArmWriteTimer(context_->options().write_timeout);
  WriteSome();
}

void HttpSession::WriteSome() {
  std::visit(
      [&](auto& stream) {
        stream.async_write_some(*out_, [self = shared_from_this()](error_code ec, size_t n) {
          self->OnWriteSome(ec, n);
        });
      },
      stream_);
}

void HttpSession::OnWriteSome(error_code ec, size_t num_bytes) {
  if (phase_ == Phase::kClosed || ec) {
    is_writing_ = false;
    return Fail();  // no-op once closed
  }
  if (num_bytes > 0) last_write_progress_ = std::chrono::steady_clock::now();
  out_->consume(num_bytes);
  if (boost::beast::buffer_bytes(*out_) > 0) return WriteSome();
  is_writing_ = false;
  out_.reset();
  OnWritten(writing_kind_);
}

void HttpSession::OnWritten(WriteKind kind) {
  switch (kind) {
    case WriteKind::kContinue:
      return Pump();  // an answer may have been queued behind it
    case WriteKind::kLast:
      return FinishResponse();
    case WriteKind::kPart:
      if (is_peer_gone_) return Fail();
      return Pump();
  }
}

size_t HttpSession::num_unsent_bytes() const {
  return pending_.size() + (out_ ? boost::beast::buffer_bytes(*out_) : 0);
}

// One timer per connection, checked against the last progress rather than
// re-armed on every write_some.
void HttpSession::ArmWriteTimer(std::chrono::steady_clock::duration wait) {
  is_write_timer_armed_ = true;
  write_timer_.expires_after(wait);
  write_timer_.async_wait([self = shared_from_this()](error_code ec) {
    self->is_write_timer_armed_ = false;
    if (ec || self->phase_ == Phase::kClosed || !self->is_writing_) return;
    const auto timeout = self->context_->options().write_timeout;
    const auto idle = std::chrono::steady_clock::now() - self->last_write_progress_;
    if (idle < timeout) return self->ArmWriteTimer(timeout - idle);
    self->DropSlowClient("the client took no byte of the response for " + Milliseconds(timeout) +
                         " (--write-timeout)");
  });
}

void HttpSession::FinishResponse() {
  if (exchange_) exchange_->MarkCompleted();
  exchange_.reset();
  answer_ = Answer::kNone;
  full_response_.reset();
  stream_head_.clear();
  out_head_.clear();
  out_body_.clear();
  pending_.clear();
  keep_alive_timer_.cancel();
  EndRecord(HttpResponseRecord::End::kComplete);
  if (is_peer_gone_) return Fail();
  if (!keep_alive_) return Linger();
  // A read may still be pending from the answer; it now reads the next
  // request, and a pipelined one may already sit in buffer_.
  ReadHead();
}

void HttpSession::ArmKeepAlive(std::chrono::steady_clock::duration wait) {
  keep_alive_timer_.expires_after(wait);
  keep_alive_timer_.async_wait([self = shared_from_this()](error_code ec) {
    if (ec || self->phase_ != Phase::kResponding || self->answer_ != Answer::kStream ||
        self->is_end_requested_) {
      return;
    }
    const auto interval = self->context_->options().keep_alive_interval;
    const auto idle = std::chrono::steady_clock::now() - self->last_stream_write_;
    if (idle < interval) return self->ArmKeepAlive(interval - idle);
    self->pending_ += kKeepAliveComment;
    self->last_stream_write_ = std::chrono::steady_clock::now();
    self->Pump();
    self->ArmKeepAlive(interval);
  });
}

}  // namespace fox
