// The HTTP/1.1 server: Boost.Beast on one Asio io_context run by a small,
// fixed pool of threads, each connection on its own strand, so thousands of
// open event streams cost sockets and buffers, not threads. It reads each
// request whole (refusing bodies over the limit with 413 before reading
// them), hands it to the handler with an HttpExchange, writes what the
// handler answers, and serves keep-alive connections one request at a time.
// It also answers CORS preflight (OPTIONS) itself and adds the CORS headers
// to every response when origins are configured.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/http/http_exchange.h"

namespace fox {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;  // 0: any free port (see HttpServer::port)
  int num_threads = 2;
  // Bodies larger than this get 413 with an OpenAI error body naming the
  // limit as --max-request-bytes.
  size_t max_request_bytes = 8 << 20;
  // An open event stream with nothing written for this long gets an SSE
  // comment (": keep-alive\n\n").
  std::chrono::milliseconds keep_alive_interval{5000};
  // A connection that has not sent a complete request head within this long
  // is closed (does not apply while a response is in progress).
  std::chrono::milliseconds read_timeout{60000};
  // Access-Control-Allow-Origin: "*" allows any origin; otherwise the
  // request's Origin is echoed when it is in the list. Empty: no CORS headers.
  std::vector<std::string> cors_origins;
  // Builds the responses the transport itself sends (400 for a malformed
  // request, 413, 405 for preflight of unknown methods...); `message` names
  // the problem. Unset: a plain-text body.
  std::function<HttpResponse(int status, const std::string& message)> make_error;
  // Called once per answered request (the handler's answers and the
  // transport's own 400/413/431/503), on an I/O thread, after the response
  // ended. Must be cheap and must not block. Unset: nothing is reported.
  std::function<void(const HttpResponseRecord&)> on_response;
};

class HttpServer {
 public:
  // Binds and starts listening and serving on options.num_threads threads.
  // Unavailable (naming host and port) when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options,
                                                           HttpHandler handler);
  // Stop()s.
  virtual ~HttpServer() = default;

  // The bound port (the chosen one when options.port was 0).
  virtual int port() const = 0;
  // Connections currently open.
  virtual int64_t num_connections() const = 0;
  // Waits until no response is in progress: every request handed to the
  // handler has had its response sent in full, or its client went away.
  // False at the timeout. For draining: the engine's last events reach
  // their clients before Stop() closes the connections.
  virtual bool WaitForResponses(std::chrono::milliseconds timeout) = 0;
  // Stops accepting, closes every connection (their exchanges' on-close
  // callbacks run), and joins the threads. Idempotent.
  virtual void Stop() = 0;
};

}  // namespace fox
