// HttpSession, response side: the handler's answers (complete responses and
// chunked event streams), the single-write-in-flight pump that batches stream
// bytes, the keep-alive comments, and what follows a finished answer.
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_cat.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/write.hpp>

#include "server/http/http_exchange_impl.h"
#include "server/http/http_session.h"

namespace fox {
namespace asio = boost::asio;
namespace http = boost::beast::http;
using boost::system::error_code;

namespace {
constexpr char kKeepAliveComment[] = ": keep-alive\n\n";
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
  if (version_ < 11) keep_alive_ = false;  // no chunking: the stream ends with the connection
  stream_head_.emplace(MakeStreamHead(version_, keep_alive_, headers, cors_headers_));
  stream_head_serializer_.emplace(*stream_head_);
  is_head_written_ = false;
  is_end_requested_ = false;
  last_stream_write_ = std::chrono::steady_clock::now();
  ArmKeepAlive(context_->options().keep_alive_interval);
  Pump();
}

void HttpSession::Write(HttpExchangeImpl* exchange, std::string bytes) {
  if (phase_ != Phase::kResponding || exchange != exchange_.get() || answer_ != Answer::kStream ||
      is_end_requested_ || bytes.empty()) {
    return;
  }
  if (pending_.empty()) {
    pending_ = std::move(bytes);
  } else {
    pending_ += bytes;
  }
  last_stream_write_ = std::chrono::steady_clock::now();
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
  full_response_.emplace(
      ToBeastResponse(std::move(response), version_, keep_alive_, cors_headers_));
  Pump();
}

// At most one write is in flight; whatever the handler adds meanwhile waits in
// pending_ and goes out as one chunk when the write completes, so a busy
// connection makes few, large writes instead of one per token.
void HttpSession::Pump() {
  if (is_writing_ || phase_ != Phase::kResponding) return;
  auto on_written = [self = shared_from_this()](bool is_last) {
    return [self, is_last](error_code ec, size_t) { self->OnWritten(ec, is_last); };
  };
  if (answer_ == Answer::kFull) {
    is_writing_ = true;
    http::async_write(socket_, *full_response_, on_written(true));
    return;
  }
  if (answer_ != Answer::kStream) return;
  if (!is_head_written_) {
    is_head_written_ = true;
    is_writing_ = true;
    http::async_write_header(socket_, *stream_head_serializer_, on_written(false));
    return;
  }
  const bool is_chunked = version_ >= 11;
  if (!pending_.empty()) {
    writing_.swap(pending_);
    pending_.clear();
    is_writing_ = true;
    if (is_chunked && is_end_requested_) {  // the last events and the end in one write
      asio::async_write(socket_,
                        boost::beast::buffers_cat(http::make_chunk(asio::buffer(writing_)),
                                                  http::make_chunk_last()),
                        on_written(true));
    } else if (is_chunked) {
      asio::async_write(socket_, http::make_chunk(asio::buffer(writing_)), on_written(false));
    } else {
      asio::async_write(socket_, asio::buffer(writing_), on_written(false));
    }
    return;
  }
  if (!is_end_requested_) return;
  if (!is_chunked) return FinishResponse();
  is_writing_ = true;
  asio::async_write(socket_, http::make_chunk_last(), on_written(true));
}

void HttpSession::OnWritten(error_code ec, bool is_last) {
  is_writing_ = false;
  if (phase_ == Phase::kClosed) return;
  if (ec) return Fail();
  if (is_last) return FinishResponse();
  if (is_peer_gone_) return Fail();
  Pump();
}

void HttpSession::FinishResponse() {
  if (exchange_) exchange_->MarkCompleted();
  exchange_.reset();
  answer_ = Answer::kNone;
  full_response_.reset();
  stream_head_serializer_.reset();
  stream_head_.reset();
  writing_.clear();
  pending_.clear();
  keep_alive_timer_.cancel();
  if (is_peer_gone_) return Fail();
  if (!keep_alive_) return Linger();
  phase_ = Phase::kReading;
  if (is_reading_) {
    // The disconnect watch is still pending, and a pipelined request may
    // already sit in buffer_, so stop it (no write is in flight to be
    // cancelled with it); OnWatch then goes on to ReadHead.
    error_code ignored;
    socket_.cancel(ignored);
    return;
  }
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
