// Reads one HTTP/1.1 request at a time out of the bytes a connection has
// received, under the transport's limits, without ever throwing: whatever a
// client sends ends as a request, a refusal (400/413/431 with a message), or
// a wait for more bytes. Beast's parser throws on some inputs (a trailer
// field of 64 KiB or more throws std::length_error), so it is only ever
// handed a bounded window of the buffer, and anything it throws anyway
// becomes a 400. Plain code over a buffer, no socket: the session feeds it.
#pragma once

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <string>

#include "server/http/http_wire.h"

namespace fox {

class HttpRequestReader {
 public:
  // The most bytes of a request head, and also of one chunk-size line (with
  // its extensions) and of a chunked body's trailers: each must fit in this
  // window, or the request is refused with 431.
  static constexpr size_t kHeadLimitBytes = 64 << 10;

  enum class State {
    kNeedMore,  // every byte in the buffer is used; read more and Parse again
    kHead,      // the head just completed (reported once); Parse again for the body
    kDone,      // the whole request is read: see request()
    kRefused,   // see refusal_status() and refusal_message()
  };

  explicit HttpRequestReader(size_t max_body_bytes);

  // Parses from the front of `buffer`, consuming what it used; bytes of a
  // pipelined next request stay in `buffer`. Once kDone or kRefused, it stays.
  State Parse(boost::beast::flat_buffer& buffer);

  // Whether any byte of this request has been parsed (for a connection that
  // ends: before any byte it is a clean close, after one a partial request).
  bool got_some() const { return parser_.got_some(); }
  bool is_head_done() const { return parser_.is_header_done(); }
  bool is_done() const { return parser_.is_done(); }
  // The head is complete, the body is not, and the client waits for
  // "100 Continue" before sending it.
  bool IsExpectingContinue() const;
  // The parsed message (its head once kHead, all of it once kDone).
  BeastRequest& request() { return parser_.get(); }

  int refusal_status() const { return refusal_status_; }
  const std::string& refusal_message() const { return refusal_message_; }

 private:
  State Refuse(int status, std::string message);
  // The checks between head and body: the declared length against the limit.
  State OnHead();

  const size_t max_body_bytes_;
  boost::beast::http::request_parser<boost::beast::http::string_body> parser_;
  bool is_head_reported_ = false;
  int refusal_status_ = 0;
  std::string refusal_message_;
};

}  // namespace fox
