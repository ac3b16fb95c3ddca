// One client connection: reads requests one after another, hands each to the
// handler with an HttpExchangeImpl, and writes the answer (a complete
// response or a chunked event stream). Everything runs on the socket's
// strand. At most one read is pending at a time, and one is pending whenever
// the session waits for bytes or writes an answer, so that a client that
// goes away is noticed at once, not at the next write.
//
//   (TLS handshake) ─> reading ──request──> responding ──done, keep-alive──> reading
//                         │                    │ done, close
//                         │ bad request        └──────────> lingering ──EOF/timeout──> closed
//                         └───(400/413/431)───> responding      any socket error ───> closed
//
// Every wait is bounded (HttpServerOptions): the head, the body, the idle
// time between requests, the time a client may take no byte of an answer,
// and the bytes of an event stream it has not taken.
#pragma once

#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "server/http/http_context.h"
#include "server/http/http_message.h"
#include "server/http/http_request_reader.h"
#include "server/http/http_stream.h"
#include "server/http/http_wire.h"

namespace fox {

class HttpExchangeImpl;

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  // `socket` must use a strand executor of the context's io_context. TLS runs
  // over it when the context has a TLS context.
  HttpSession(std::shared_ptr<HttpContext> context, boost::asio::ip::tcp::socket socket);
  ~HttpSession();

  // Before Start: the connection is over --max-connections, so it answers
  // 503 with Retry-After at once (after the TLS handshake) and closes.
  void Refuse() { is_refused_ = true; }
  // Any thread: begin serving / close as if the client went away.
  void Start();
  void Close();

  boost::asio::any_io_executor executor() { return TcpSocket(stream_).get_executor(); }
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
  // What the write in flight carries: "100 Continue", part of an answer, or
  // the end of one.
  enum class WriteKind { kContinue, kPart, kLast };

  // Request side (http_session.cc).
  void OnHandshake(boost::system::error_code ec);
  void ReadHead();
  void Parse();
  void OnHead();
  void Dispatch();
  void ArmReadTimer(std::chrono::milliseconds timeout);
  void Read();
  void Watch();
  void OnRead(boost::system::error_code ec, size_t num_bytes);
  // Takes `message` by value: it may live in the reader this resets.
  void SendError(int status, std::string message, HttpHeaders headers = {});
  void Linger();
  void Fail();
  // Drops a client that does not take its answer (write timeout, unsent cap).
  void DropSlowClient(const std::string& reason);
  void BeginRecord(std::string method, std::string path);
  void EndRecord(HttpResponseRecord::End end);

  // Response side (http_session_write.cc).
  void SendResponse(HttpResponse response);
  void Pump();
  void StartWrite(WriteKind kind, std::string head, const char* tail);
  void WriteSome();
  void OnWriteSome(boost::system::error_code ec, size_t num_bytes);
  void OnWritten(WriteKind kind);
  void ArmWriteTimer(std::chrono::steady_clock::duration wait);
  size_t num_unsent_bytes() const;
  void FinishResponse();
  void ArmKeepAlive(std::chrono::steady_clock::duration wait);

  const std::shared_ptr<HttpContext> context_;
  HttpStream stream_;
  bool is_refused_ = false;
  std::string peer_;                      // "address:port", for logs
  boost::asio::steady_timer read_timer_;  // head/body/idle deadline, then the linger deadline
  boost::asio::steady_timer write_timer_;
  boost::asio::steady_timer keep_alive_timer_;
  uint64_t read_timer_generation_ = 0;
  boost::beast::flat_buffer buffer_;
  std::optional<HttpRequestReader> reader_;
  Phase phase_ = Phase::kReading;
  bool is_first_request_ = true;     // its head deadline runs from the accept
  bool is_request_started_ = false;  // a byte of the request being read has arrived
  bool is_reading_ = false;          // a read is pending
  bool is_peer_gone_ = false;        // the read saw EOF while a write was in flight

  // The write in flight (is_writing_): up to three buffers over out_head_,
  // out_body_ and a static tail, and what of them is still to go.
  bool is_writing_ = false;
  WriteKind writing_kind_ = WriteKind::kPart;
  std::string out_head_;
  std::string out_body_;
  std::optional<boost::beast::buffers_suffix<std::array<boost::asio::const_buffer, 3>>> out_;
  std::chrono::steady_clock::time_point last_write_progress_;
  bool is_write_timer_armed_ = false;

  // The answer in progress (phase kResponding).
  std::shared_ptr<HttpExchangeImpl> exchange_;  // null for the transport's own answers
  Answer answer_ = Answer::kNone;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool is_head_request_ = false;  // HEAD: the answer's head only
  HttpHeaders cors_headers_;
  std::optional<BeastResponse> full_response_;
  std::string stream_head_;  // the event stream's head, until written
  bool is_head_written_ = false;
  bool is_end_requested_ = false;
  std::string pending_;  // stream bytes waiting for the next write
  std::chrono::steady_clock::time_point last_stream_write_;
  // The answered request, reported to on_response when it ends.
  std::optional<HttpResponseRecord> record_;
  std::chrono::steady_clock::time_point record_start_;
  HttpResponseRecord::End fail_end_ = HttpResponseRecord::End::kClientGone;
};

}  // namespace fox
