// The HTTP records passed between the transport (http_server) and the route
// handlers: a fully read request, a complete response, and the record of one
// answered request that the transport hands to its observer. Plain data.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace fox {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without the query string, e.g. "/v1/completions"
  std::string query;   // after '?', undecoded; empty when none
  // Header names lower-cased; a repeated header appears once per occurrence.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  // The first value of header `name` (lower-case), or "" when absent.
  std::string Header(const std::string& name) const {
    for (const auto& [key, value] : headers) {
      if (key == name) return value;
    }
    return "";
  }
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // extra ones, e.g. Retry-After
  std::string body;
};

// One answered request, as the transport saw it end: for metrics and logs.
struct HttpResponseRecord {
  std::string method;  // "" when the request head never parsed (a 400/431)
  std::string path;    // without the query string; "" as for method
  int status = 0;      // the status line sent (200 for an event stream)
  double seconds = 0;  // from the complete request head to the response's end
  enum class End {
    kComplete,      // every byte of the response was written
    kClientGone,    // the client disconnected (or a write failed) first
    kWriteTimeout,  // the client read nothing for the write timeout, so it was dropped
  } end = End::kComplete;
};

}  // namespace fox
