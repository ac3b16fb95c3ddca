// Translation between Beast's messages and the transport's plain records:
// the parsed request becomes an HttpRequest, an HttpResponse (or the head of
// an event stream) becomes a Beast response ready to serialise. Also the
// fallback error body when the server has no make_error.
#pragma once

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <string>
#include <utility>
#include <vector>

#include "server/http/http_message.h"
#include "server/http/http_server.h"

namespace fox {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;
using BeastRequest = boost::beast::http::request<boost::beast::http::string_body>;
using BeastResponse = boost::beast::http::response<boost::beast::http::string_body>;
using BeastStreamHead = boost::beast::http::response<boost::beast::http::empty_body>;

// Moves the body out of `request`. Header names are lower-cased; the target
// is split at the first '?'.
HttpRequest ToHttpRequest(BeastRequest& request);

// A complete response with Content-Length, `extra` appended after the
// response's own headers (the CORS ones). For HEAD the caller sends only its
// head, whose Content-Length is still the body's.
BeastResponse ToBeastResponse(HttpResponse response, unsigned version, bool keep_alive,
                              const HttpHeaders& extra);

// The head of a chunked `text/event-stream` response. HTTP/1.0 clients get
// no chunking (the stream ends when the connection closes).
BeastStreamHead MakeStreamHead(unsigned version, bool keep_alive, const HttpHeaders& headers,
                               const HttpHeaders& extra);

// The status line and headers of a response, with the blank line after them.
std::string HeadBytes(const boost::beast::http::response_header<>& head);

// options.make_error(status, message), or a text/plain body when unset.
HttpResponse MakeErrorResponse(const HttpServerOptions& options, int status,
                               const std::string& message);

}  // namespace fox
