// HttpSession, request side: reading heads and bodies under the limits,
// dispatching to the handler, watching for disconnects, and closing.
#include "server/http/http_session.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <exception>
#include <limits>

#include "server/http/http_cors.h"
#include "server/http/http_exchange_impl.h"

namespace fox {
namespace asio = boost::asio;
namespace http = boost::beast::http;
using boost::system::error_code;

namespace {
constexpr uint32_t kHeaderLimitBytes = 64 << 10;
// While answering, bytes a pipelining client sends are kept for the next
// request; past this much the watch stops reading (a failed write still
// notices a disconnect).
constexpr size_t kWatchBufferLimitBytes = 1 << 20;
constexpr size_t kWatchReadBytes = 4096;
// How long a closing connection drains what the client still sends, so that
// closing with unread input (which resets the connection) cannot destroy the
// response in flight, e.g. a 413 sent without reading the body.
constexpr std::chrono::milliseconds kLingerTimeout{2000};
constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";

bool IsClientGone(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
         ec == asio::error::broken_pipe || ec == http::error::partial_message;
}
}  // namespace

HttpSession::HttpSession(std::shared_ptr<HttpContext> context, asio::ip::tcp::socket socket)
    : context_(std::move(context)),
      socket_(std::move(socket)),
      read_timer_(socket_.get_executor()),
      keep_alive_timer_(socket_.get_executor()) {}

HttpSession::~HttpSession() { context_->Unregister(this); }

void HttpSession::Start() {
  asio::dispatch(executor(), [self = shared_from_this()] { self->ReadHead(); });
}

void HttpSession::Close() {
  asio::post(executor(), [self = shared_from_this()] { self->Fail(); });
}

void HttpSession::ReadHead() {
  phase_ = Phase::kReading;
  parser_.emplace();
  parser_->header_limit(kHeaderLimitBytes);
  // Checked by OnHead instead, to name the size in the 413. (Not boost::none:
  // Boost 1.74 compares lengths against it as if it were below any value.)
  parser_->body_limit(std::numeric_limits<uint64_t>::max());
  ArmReadTimer(context_->options().read_timeout);
  is_reading_ = true;
  http::async_read_header(socket_, buffer_, *parser_,
                          [self = shared_from_this()](error_code ec, size_t) { self->OnHead(ec); });
}

void HttpSession::OnHead(error_code ec) {
  is_reading_ = false;
  if (phase_ != Phase::kReading) return;
  if (ec) {
    if (IsClientGone(ec)) return Fail();
    if (ec == http::error::header_limit) {
      return SendError(431, "request head is over " + std::to_string(kHeaderLimitBytes) + " bytes");
    }
    return SendError(400, "malformed HTTP request: " + ec.message());
  }
  const size_t limit = context_->options().max_request_bytes;
  if (const auto length = parser_->content_length(); length && *length > limit) {
    return SendError(413, "request body is " + std::to_string(*length) +
                              " bytes, over the --max-request-bytes limit of " +
                              std::to_string(limit));
  }
  parser_->body_limit(limit);
  if (parser_->is_done()) return OnBody({});
  if (boost::beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
    is_writing_ = true;
    asio::async_write(socket_, asio::buffer(kContinue, sizeof(kContinue) - 1),
                      [self = shared_from_this()](error_code ec, size_t) {
                        self->is_writing_ = false;
                        if (self->phase_ != Phase::kReading) return;
                        if (ec) return self->Fail();
                        self->ReadBody();
                      });
    return;
  }
  ReadBody();
}

void HttpSession::ReadBody() {
  ArmReadTimer(context_->options().read_timeout);  // the body gets a timeout of its own
  is_reading_ = true;
  http::async_read(socket_, buffer_, *parser_,
                   [self = shared_from_this()](error_code ec, size_t) { self->OnBody(ec); });
}

void HttpSession::OnBody(error_code ec) {
  is_reading_ = false;
  if (phase_ != Phase::kReading) return;
  if (ec == http::error::body_limit) {
    return SendError(413, "request body is over the --max-request-bytes limit of " +
                              std::to_string(context_->options().max_request_bytes) + " bytes");
  }
  if (ec) {
    if (IsClientGone(ec)) return Fail();
    return SendError(400, "malformed HTTP request body: " + ec.message());
  }
  Dispatch();
}

void HttpSession::Dispatch() {
  BeastRequest& beast_request = parser_->get();
  version_ = beast_request.version();
  keep_alive_ = beast_request.keep_alive();
  HttpRequest request = ToHttpRequest(beast_request);
  parser_.reset();
  phase_ = Phase::kResponding;
  ++read_timer_generation_;
  read_timer_.cancel();
  answer_ = Answer::kNone;
  const HttpServerOptions& options = context_->options();
  cors_headers_ = CorsHeaders(options.cors_origins, request.Header("origin"));
  Watch();
  if (!options.cors_origins.empty() && request.method == "OPTIONS") {
    return SendResponse(PreflightResponse(options, request));
  }
  exchange_ = std::make_shared<HttpExchangeImpl>(shared_from_this());
  std::shared_ptr<HttpExchange> exchange = exchange_;
  try {
    context_->handler()(std::move(request), std::move(exchange));
  } catch (const std::exception& e) {
    // The exchange's own calls are queued on this strand and run after us,
    // so nothing has been answered yet unless the handler answered and then
    // threw; then the connection is in an unknown state and is dropped.
    keep_alive_ = false;
    SendResponse(
        MakeErrorResponse(options, 500, std::string("request handler failed: ") + e.what()));
  }
}

void HttpSession::ArmReadTimer(std::chrono::milliseconds timeout) {
  const uint64_t generation = ++read_timer_generation_;
  read_timer_.expires_after(timeout);
  read_timer_.async_wait([self = shared_from_this(), generation](error_code ec) {
    if (ec || generation != self->read_timer_generation_) return;
    self->Fail();
  });
}

void HttpSession::Watch() {
  if (is_reading_ || buffer_.size() > kWatchBufferLimitBytes) return;
  is_reading_ = true;
  socket_.async_read_some(buffer_.prepare(kWatchReadBytes),
                          [self = shared_from_this()](error_code ec, size_t num_bytes) {
                            self->OnWatch(ec, num_bytes);
                          });
}

void HttpSession::OnWatch(error_code ec, size_t num_bytes) {
  is_reading_ = false;
  if (phase_ == Phase::kClosed) return;
  if (ec == asio::error::operation_aborted && phase_ == Phase::kReading) return ReadHead();
  if (ec && phase_ == Phase::kResponding && is_writing_) {
    // The write in flight may be the answer's last; if it succeeds the
    // client got everything and its leaving is no failure (OnWritten decides).
    is_peer_gone_ = true;
    return;
  }
  if (ec) return Fail();
  buffer_.commit(num_bytes);
  switch (phase_) {
    case Phase::kResponding:
      return Watch();
    case Phase::kReading:
      return ReadHead();  // the answer finished while this read was pending
    case Phase::kLingering:
      buffer_.consume(buffer_.size());
      return Watch();
    case Phase::kClosed:
      return;
  }
}

void HttpSession::SendError(int status, const std::string& message) {
  const HttpServerOptions& options = context_->options();
  if (parser_ && parser_->is_header_done()) {
    version_ = parser_->get().version();
    cors_headers_ =
        CorsHeaders(options.cors_origins, std::string(parser_->get()[http::field::origin]));
  } else {
    version_ = 11;
    cors_headers_ = CorsHeaders(options.cors_origins, "");
  }
  parser_.reset();
  keep_alive_ = false;  // what follows on the connection cannot be trusted
  phase_ = Phase::kResponding;
  ++read_timer_generation_;
  read_timer_.cancel();
  answer_ = Answer::kNone;
  SendResponse(MakeErrorResponse(options, status, message));
}

void HttpSession::Linger() {
  phase_ = Phase::kLingering;
  error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  buffer_.consume(buffer_.size());
  ArmReadTimer(kLingerTimeout);
  Watch();  // no-op when the watch is already pending
}

void HttpSession::Fail() {
  if (phase_ == Phase::kClosed) return;
  phase_ = Phase::kClosed;
  error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  ++read_timer_generation_;
  read_timer_.cancel();
  keep_alive_timer_.cancel();
  pending_.clear();
  // Unregister only after the callback, so that Stop() sees the connection
  // until its on-close callback has run.
  if (auto exchange = std::move(exchange_)) exchange->MarkClosed();
  context_->Unregister(this);
}

}  // namespace fox
