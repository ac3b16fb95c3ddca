// CORS headers and preflight answers.
#include "server/http/http_cors.h"

#include <algorithm>

namespace fox {

namespace {
constexpr char kAllowedMethods[] = "GET, POST, OPTIONS";
constexpr char kDefaultAllowedHeaders[] = "Authorization, Content-Type";
constexpr char kMaxAgeSeconds[] = "86400";
}  // namespace

HttpHeaders CorsHeaders(const std::vector<std::string>& allowed_origins,
                        const std::string& origin) {
  HttpHeaders headers;
  if (allowed_origins.empty()) return headers;
  if (std::find(allowed_origins.begin(), allowed_origins.end(), "*") != allowed_origins.end()) {
    headers.emplace_back("Access-Control-Allow-Origin", "*");
    return headers;
  }
  // The answer depends on the request's Origin even when it is refused, so
  // caches must key on it.
  if (!origin.empty() &&
      std::find(allowed_origins.begin(), allowed_origins.end(), origin) != allowed_origins.end()) {
    headers.emplace_back("Access-Control-Allow-Origin", origin);
  }
  headers.emplace_back("Vary", "Origin");
  return headers;
}

HttpResponse PreflightResponse(const HttpServerOptions& options, const HttpRequest& request) {
  const std::string method = request.Header("access-control-request-method");
  if (!method.empty() && method != "GET" && method != "POST" && method != "OPTIONS") {
    HttpResponse refused = MakeErrorResponse(
        options, 405, "method " + method + " is not allowed; use one of " + kAllowedMethods);
    refused.headers.emplace_back("Allow", kAllowedMethods);
    return refused;
  }
  const std::string requested_headers = request.Header("access-control-request-headers");
  HttpResponse response;
  response.status = 204;
  response.content_type.clear();
  response.headers = {
      {"Access-Control-Allow-Methods", kAllowedMethods},
      {"Access-Control-Allow-Headers",
       requested_headers.empty() ? kDefaultAllowedHeaders : requested_headers},
      {"Access-Control-Max-Age", kMaxAgeSeconds},
  };
  return response;
}

}  // namespace fox
