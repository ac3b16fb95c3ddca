// One request's way back to its client. A handler answers either with one
// complete response (Respond) or with a server-sent event stream (StartStream,
// then Write any number of times, then EndStream). Every method may be called
// from any thread; the exchange serialises the work on its connection's strand
// and keeps at most one socket write in flight, appending what arrives
// meanwhile to the next write.
//
// Lifetime: the transport and the handler share the exchange; it lives until
// both let go. After the client disconnects (or a write fails) the on-close
// callback runs once, later calls are ignored, and closed() is true.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "server/http/http_message.h"

namespace fox {

class HttpExchange {
 public:
  virtual ~HttpExchange() = default;

  // Sends a complete response. Call once, and not after StartStream.
  virtual void Respond(HttpResponse response) = 0;

  // Sends the head of a `text/event-stream` response (200, chunked, no
  // caching) with `headers` added. While the stream is open and nothing has
  // been written for the server's keep-alive interval, the transport writes an
  // SSE comment line (": keep-alive\n\n") so that proxies and clients do not
  // time out during a long prefill.
  virtual void StartStream(std::vector<std::pair<std::string, std::string>> headers = {}) = 0;
  // Appends bytes, already framed as SSE ("data: {...}\n\n"), to the stream.
  virtual void Write(std::string bytes) = 0;
  // Ends the stream after everything written so far has been sent; the
  // connection may then serve the client's next request (keep-alive).
  virtual void EndStream() = 0;

  // Runs `fn` on this exchange's strand, after work already posted there.
  // Handlers use it to move work off the engine thread (stream notifiers).
  virtual void Post(std::function<void()> fn) = 0;

  // `fn` runs once, on the strand, if the client goes away (disconnect, reset,
  // failed write) before the response was complete. If that has already
  // happened, it runs soon after this call. Set it at most once.
  virtual void OnClose(std::function<void()> fn) = 0;
  virtual bool closed() const = 0;
};

// What the transport calls for each complete request. Runs on an I/O thread:
// keep it short (parse, tokenize, submit) and finish asynchronously through
// the exchange. The handler must eventually Respond or End its stream unless
// the client goes away first.
using HttpHandler = std::function<void(HttpRequest, std::shared_ptr<HttpExchange>)>;

}  // namespace fox
