// One client connection: reads requests one after another, hands each to the
// handler with an HttpExchangeImpl, and writes the answer (a complete
// response or a chunked event stream). Everything runs on the socket's
// strand. While an answer is in progress a read stays pending so that a
// client that goes away is noticed at once, not at the next write.
//
//   reading ──request──> responding ──done, keep-alive──> reading
//      │                     │ done, close
//      │ bad request         └──────────> lingering ──EOF/timeout──> closed
//      └─────(400/413)──────> responding     any socket error ─────> closed
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/serializer.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "server/http/http_context.h"
#include "server/http/http_wire.h"

namespace fox {

class HttpExchangeImpl;

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  // `socket` must use a strand executor of the context's io_context.
  HttpSession(std::shared_ptr<HttpContext> context, boost::asio::ip::tcp::socket socket);
  ~HttpSession();

  // Any thread: begin serving / close as if the client went away.
  void Start();
  void Close();

  boost::asio::any_io_executor executor() { return socket_.get_executor(); }
  HttpContext& context() { return *context_; }

  // Strand only; each is ignored unless `exchange` is the one in progress and
  // the call fits its state (e.g. Write before StartStream is dropped).
  void Respond(HttpExchangeImpl* exchange, HttpResponse response);
  void StartStream(HttpExchangeImpl* exchange, HttpHeaders headers);
  void Write(HttpExchangeImpl* exchange, std::string bytes);
  void EndStream(HttpExchangeImpl* exchange);

 private:
  enum class Phase { kReading, kResponding, kLingering, kClosed };
  enum class Answer { kNone, kFull, kStream };

  // Request side (http_session.cc).
  void ReadHead();
  void OnHead(boost::system::error_code ec);
  void ReadBody();
  void OnBody(boost::system::error_code ec);
  void Dispatch();
  void ArmReadTimer(std::chrono::milliseconds timeout);
  void Watch();
  void OnWatch(boost::system::error_code ec, size_t num_bytes);
  void SendError(int status, const std::string& message);
  void Linger();
  void Fail();

  // Response side (http_session_write.cc).
  void SendResponse(HttpResponse response);
  void Pump();
  void OnWritten(boost::system::error_code ec, bool is_last);
  void FinishResponse();
  void ArmKeepAlive(std::chrono::steady_clock::duration wait);

  const std::shared_ptr<HttpContext> context_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer read_timer_;  // request deadline, then the linger deadline
  boost::asio::steady_timer keep_alive_timer_;
  uint64_t read_timer_generation_ = 0;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  Phase phase_ = Phase::kReading;
  bool is_reading_ = false;  // a request read or the disconnect watch is pending
  bool is_writing_ = false;
  bool is_peer_gone_ = false;  // the watch saw EOF while a write was in flight

  // The answer in progress (phase kResponding).
  std::shared_ptr<HttpExchangeImpl> exchange_;  // null for the transport's own answers
  Answer answer_ = Answer::kNone;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  HttpHeaders cors_headers_;
  std::optional<BeastResponse> full_response_;
  std::optional<BeastStreamHead> stream_head_;
  std::optional<boost::beast::http::response_serializer<boost::beast::http::empty_body>>
      stream_head_serializer_;
  bool is_head_written_ = false;
  bool is_end_requested_ = false;
  std::string pending_;  // stream bytes waiting for the next write
  std::string writing_;  // stream bytes of the write in flight
  std::chrono::steady_clock::time_point last_stream_write_;
};

}  // namespace fox
