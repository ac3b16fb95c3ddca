// CORS for the transport: which Access-Control-* headers a response gets for
// a request's Origin, and the answer to a preflight (OPTIONS) request. Only
// used when HttpServerOptions::cors_origins is non-empty.
#pragma once

#include <string>
#include <vector>

#include "server/http/http_message.h"
#include "server/http/http_server.h"
#include "server/http/http_wire.h"

namespace fox {

// Headers every response to a request from `origin` carries: the allowed
// origin ("*", or `origin` echoed when listed, with Vary: Origin). Empty when
// `allowed_origins` is empty.
HttpHeaders CorsHeaders(const std::vector<std::string>& allowed_origins, const std::string& origin);

// 204 with the allowed methods and headers for a preflight, or 405 (via
// make_error) when it asks for a method the server does not serve. The
// caller adds CorsHeaders.
HttpResponse PreflightResponse(const HttpServerOptions& options, const HttpRequest& request);

}  // namespace fox
