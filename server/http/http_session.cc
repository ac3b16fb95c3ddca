// HttpSession, request side: the TLS handshake, reading requests under their
// deadlines, dispatching to the handler, watching for disconnects, the
// record of each answered request, and closing.
#include "server/http/http_session.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ssl/stream_base.hpp>
#include <boost/beast/http/field.hpp>
#include <exception>
#include <utility>

#include "server/http/http_cors.h"
#include "server/http/http_exchange_impl.h"

namespace fox {
namespace asio = boost::asio;
namespace http = boost::beast::http;
using boost::system::error_code;

namespace {
// While answering, bytes a pipelining client sends are kept for the next
// request; past this much the session stops reading (a failed write still
// notices a disconnect).
constexpr size_t kWatchBufferLimitBytes = 1 << 20;
constexpr size_t kWatchReadBytes = 4096;
constexpr size_t kRequestReadBytes = 64 << 10;
// How long a closing connection drains what the client still sends, so that
// closing with unread input (which resets the connection) cannot destroy the
// response in flight, e.g. a 413 sent without reading the body.
constexpr std::chrono::milliseconds kLingerTimeout{2000};
// What a connection over --max-connections is told: try again this soon.
constexpr char kRefusedRetryAfterSeconds[] = "1";

std::string PeerName(asio::ip::tcp::socket& socket) {
  error_code ec;
  const auto endpoint = socket.remote_endpoint(ec);
  if (ec) return "";
  return endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
}

std::string TargetPath(const BeastRequest& request) {
  const std::string_view target(request.target().data(), request.target().size());
  return std::string(target.substr(0, target.find('?')));
}
}  // namespace

HttpSession::HttpSession(std::shared_ptr<HttpContext> context, asio::ip::tcp::socket socket)
    : context_(std::move(context)),
      stream_(MakeHttpStream(std::move(socket), context_->tls())),
      peer_(PeerName(TcpSocket(stream_))),
      read_timer_(executor()),
      write_timer_(executor()),
      keep_alive_timer_(executor()) {}

HttpSession::~HttpSession() { context_->Unregister(this); }

void HttpSession::Start() {
  asio::dispatch(executor(), [self = shared_from_this()] {
    // The first request's head deadline covers the TLS handshake too.
    self->is_request_started_ = true;
    self->ArmReadTimer(self->context_->options().header_timeout);
    if (auto* tls = std::get_if<TlsStream>(&self->stream_)) {
      tls->async_handshake(asio::ssl::stream_base::server,
                           [self](error_code ec) { self->OnHandshake(ec); });
      return;
    }
    self->OnHandshake({});
  });
}

void HttpSession::Close() {
  asio::post(executor(), [self = shared_from_this()] { self->Fail(); });
}

void HttpSession::OnHandshake(error_code ec) {
  if (phase_ == Phase::kClosed) return;
  // Plain HTTP on the TLS port, a refused client certificate, or a client
  // gone: no request to answer.
  if (ec) return Fail();
  if (is_refused_) {
    return SendError(503,
                     "the server is at its --max-connections limit of " +
                         std::to_string(context_->options().max_connections) + " connections",
                     {{"Retry-After", kRefusedRetryAfterSeconds}});
  }
  ReadHead();
}

void HttpSession::ReadHead() {
  phase_ = Phase::kReading;
  reader_.emplace(context_->options().max_request_bytes);
  if (!is_first_request_) {
    // Idle until a byte of the next request arrives, then its head deadline.
    is_request_started_ = buffer_.size() > 0;
    const HttpServerOptions& options = context_->options();
    ArmReadTimer(is_request_started_ ? options.header_timeout : options.keep_alive_timeout);
  }
  Parse();
}

void HttpSession::Parse() {
  for (;;) {
    switch (reader_->Parse(buffer_)) {
      case HttpRequestReader::State::kNeedMore:
        if (!is_reading_) Read();
        return;
      case HttpRequestReader::State::kHead:
        OnHead();
        continue;
      case HttpRequestReader::State::kDone:
        return Dispatch();
      case HttpRequestReader::State::kRefused:
        return SendError(reader_->refusal_status(), reader_->refusal_message());
    }
  }
}

void HttpSession::OnHead() {
  record_start_ = std::chrono::steady_clock::now();
  if (reader_->is_done()) return;                  // no body: Dispatch follows
  ArmReadTimer(context_->options().body_timeout);  // the body gets a deadline of its own
  if (reader_->IsExpectingContinue() && !is_writing_) {
    out_body_.clear();
    StartWrite(WriteKind::kContinue, "HTTP/1.1 100 Continue\r\n\r\n", "");
  }
}

void HttpSession::Dispatch() {
  BeastRequest& beast_request = reader_->request();
  version_ = beast_request.version();
  keep_alive_ = beast_request.keep_alive();
  HttpRequest request;
  try {
    request = ToHttpRequest(beast_request);
  } catch (const std::exception& e) {
    return SendError(400, std::string("malformed HTTP request: ") + e.what());
  }
  reader_.reset();
  phase_ = Phase::kResponding;
  is_first_request_ = false;
  ++read_timer_generation_;
  read_timer_.cancel();
  answer_ = Answer::kNone;
  is_head_request_ = request.method == "HEAD";
  BeginRecord(request.method, request.path);
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

void HttpSession::Read() {
  is_reading_ = true;
  const auto buffers =
      buffer_.prepare(phase_ == Phase::kReading ? kRequestReadBytes : kWatchReadBytes);
  std::visit(
      [&](auto& stream) {
        stream.async_read_some(
            buffers, [self = shared_from_this()](error_code ec, size_t n) { self->OnRead(ec, n); });
      },
      stream_);
}

// While answering or lingering, the read that notices a client going away.
void HttpSession::Watch() {
  if (is_reading_ || is_peer_gone_ || buffer_.size() > kWatchBufferLimitBytes) return;
  Read();
}

void HttpSession::OnRead(error_code ec, size_t num_bytes) {
  is_reading_ = false;
  if (phase_ == Phase::kClosed) return;
  if (ec && phase_ == Phase::kResponding && is_writing_) {
    // The write in flight may be the answer's last; if it succeeds the
    // client got everything and its leaving is no failure (OnWritten decides).
    is_peer_gone_ = true;
    return;
  }
  if (ec) return Fail();
  buffer_.commit(num_bytes);
  switch (phase_) {
    case Phase::kReading:
      if (!is_request_started_ && num_bytes > 0) {
        is_request_started_ = true;
        ArmReadTimer(context_->options().header_timeout);
      }
      return Parse();
    case Phase::kResponding:
      return Watch();
    case Phase::kLingering:
      buffer_.consume(buffer_.size());
      return Watch();
    case Phase::kClosed:
      return;
  }
}

void HttpSession::SendError(int status, std::string message, HttpHeaders headers) {
  const HttpServerOptions& options = context_->options();
  std::string method, path;
  is_head_request_ = false;
  if (reader_ && reader_->is_head_done()) {
    const BeastRequest& request = reader_->request();
    version_ = request.version();
    cors_headers_ = CorsHeaders(options.cors_origins, std::string(request[http::field::origin]));
    method = std::string(request.method_string());
    path = TargetPath(request);
    is_head_request_ = request.method() == http::verb::head;
  } else {
    version_ = 11;
    cors_headers_ = CorsHeaders(options.cors_origins, "");
  }
  reader_.reset();
  keep_alive_ = false;  // what follows on the connection cannot be trusted
  phase_ = Phase::kResponding;
  ++read_timer_generation_;
  read_timer_.cancel();
  answer_ = Answer::kNone;
  record_start_ = std::chrono::steady_clock::now();
  BeginRecord(std::move(method), std::move(path));
  HttpResponse response = MakeErrorResponse(options, status, message);
  for (auto& header : headers) response.headers.push_back(std::move(header));
  SendResponse(std::move(response));
}

void HttpSession::Linger() {
  phase_ = Phase::kLingering;
  error_code ignored;
  // TLS too: the response was framed (Content-Length or chunked), so no
  // close_notify is needed to tell its end from a truncation.
  TcpSocket(stream_).shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  buffer_.consume(buffer_.size());
  ArmReadTimer(kLingerTimeout);
  Watch();  // no-op when a read is already pending
}

void HttpSession::Fail() {
  if (phase_ == Phase::kClosed) return;
  phase_ = Phase::kClosed;
  error_code ignored;
  TcpSocket(stream_).shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  TcpSocket(stream_).close(ignored);
  ++read_timer_generation_;
  read_timer_.cancel();
  write_timer_.cancel();
  keep_alive_timer_.cancel();
  pending_.clear();
  EndRecord(fail_end_);
  // Unregister only after the callback, so that Stop() sees the connection
  // until its on-close callback has run.
  if (auto exchange = std::move(exchange_)) exchange->MarkClosed();
  context_->Unregister(this);
}

void HttpSession::DropSlowClient(const std::string& reason) {
  context_->Log("dropped a client that does not read its response",
                {{"reason", reason},
                 {"peer", peer_},
                 {"method", record_ ? record_->method : ""},
                 {"path", record_ ? record_->path : ""}});
  fail_end_ = HttpResponseRecord::End::kWriteTimeout;
  Fail();
}

void HttpSession::BeginRecord(std::string method, std::string path) {
  record_.emplace();
  record_->method = std::move(method);
  record_->path = std::move(path);
}

void HttpSession::EndRecord(HttpResponseRecord::End end) {
  if (!record_) return;
  HttpResponseRecord record = std::move(*record_);
  record_.reset();
  record.end = end;
  record.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - record_start_).count();
  if (context_->options().on_response) context_->options().on_response(record);
}

}  // namespace fox
