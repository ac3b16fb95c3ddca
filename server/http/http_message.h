// The HTTP records passed between the transport (http_server) and the route
// handlers: a fully read request, and a complete response. Plain data.
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

}  // namespace fox
