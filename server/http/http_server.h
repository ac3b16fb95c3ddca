// The HTTP/1.1 server: Boost.Beast on one Asio io_context run by a small,
// fixed pool of threads, each connection on its own strand, so thousands of
// open event streams cost sockets and buffers, not threads. It reads each
// request whole (refusing bodies over the limit with 413 before reading
// them), hands it to the handler with an HttpExchange, writes what the
// handler answers, and serves keep-alive connections one request at a time.
// It also answers CORS preflight (OPTIONS) itself and adds the CORS headers
// to every response when origins are configured, sends HEAD requests the
// head of the handler's answer without its body, and speaks TLS when
// configured. Every client is bounded in time and memory by the limits below,
// so that no client can hold a connection, a buffer or the process hostage.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "server/http/http_exchange.h"
#include "server/tls_options.h"

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

  // Time limits on clients; each ends the connection without an answer.
  // The request head must be complete this long after the connection was
  // accepted (TLS handshake included), or on a kept-alive connection after
  // the request's first byte: a client trickling its head (slowloris) holds
  // a connection for at most this long.
  std::chrono::milliseconds header_timeout{10000};
  // The body must be complete this long after its head.
  std::chrono::milliseconds body_timeout{60000};
  // A kept-alive connection with no byte of a next request for this long is
  // closed (uvicorn's default). Keep it above a fronting proxy's idle timeout.
  std::chrono::milliseconds keep_alive_timeout{5000};
  // While a response is being written, a client that takes no byte of it for
  // this long is dropped: its exchange closes (the on-close callback runs),
  // and the response ends as kWriteTimeout.
  std::chrono::milliseconds write_timeout{30000};
  // Event-stream bytes the client has not taken yet (queued behind the write
  // in flight, and that write's rest); past this the client is dropped as for
  // the write timeout, so a stalled reader costs bounded memory.
  size_t max_unsent_bytes = 1 << 20;
  // Connections served at once. Past it a new connection gets 503 with
  // Retry-After and is closed. 0: the open-file limit (RLIMIT_NOFILE) less
  // kReservedFileDescriptors, read at Start.
  int max_connections = 0;
  static constexpr int kReservedFileDescriptors = 128;

  // TLS on this port when tls.enabled(); the files are read at Start.
  TlsOptions tls;

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
  // Transport events an operator should see (a client dropped for not
  // reading, accept failing for lack of file descriptors), as a message and
  // fields; meant for a warning-level log line. Any I/O thread; must not
  // block. Unset: not reported.
  std::function<void(const std::string& message,
                     const std::vector<std::pair<std::string, std::string>>& fields)>
      log;
};

class HttpServer {
 public:
  // Binds and starts listening and serving on options.num_threads threads.
  // Unavailable (naming host and port) when the address cannot be bound;
  // InvalidArgument (naming the flag and file) for unusable TLS files.
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
