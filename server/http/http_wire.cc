// Beast <-> HttpRequest / HttpResponse conversions.
#include "server/http/http_wire.h"

#include <boost/beast/http/write.hpp>
#include <cctype>
#include <sstream>

namespace fox {
namespace http = boost::beast::http;

namespace {

std::string Lower(boost::beast::string_view text) {
  std::string out(text.data(), text.size());
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// 1xx, 204 and 304 responses carry neither a body nor Content-Length.
bool HasNoBody(int status) { return status < 200 || status == 204 || status == 304; }

}  // namespace

HttpRequest ToHttpRequest(BeastRequest& request) {
  HttpRequest out;
  out.method = std::string(request.method_string().data(), request.method_string().size());
  const std::string_view target(request.target().data(), request.target().size());
  const size_t question = target.find('?');
  out.path = std::string(target.substr(0, question));
  if (question != std::string_view::npos) out.query = std::string(target.substr(question + 1));
  for (const auto& field : request) {
    out.headers.emplace_back(Lower(field.name_string()),
                             std::string(field.value().data(), field.value().size()));
  }
  out.body = std::move(request.body());
  return out;
}

BeastResponse ToBeastResponse(HttpResponse response, unsigned version, bool keep_alive,
                              const HttpHeaders& extra) {
  BeastResponse out;
  out.version(version);
  out.result(static_cast<unsigned>(response.status));
  if (!response.content_type.empty() && !HasNoBody(response.status)) {
    out.set(http::field::content_type, response.content_type);
  }
  for (const auto& [name, value] : response.headers) out.insert(name, value);
  for (const auto& [name, value] : extra) out.insert(name, value);
  out.keep_alive(keep_alive);
  if (HasNoBody(response.status)) {
    out.body().clear();
  } else {
    out.body() = std::move(response.body);
    out.content_length(out.body().size());
  }
  return out;
}

BeastStreamHead MakeStreamHead(unsigned version, bool keep_alive, const HttpHeaders& headers,
                               const HttpHeaders& extra) {
  BeastStreamHead head;
  head.version(version);
  head.result(http::status::ok);
  head.set(http::field::content_type, "text/event-stream");
  head.set(http::field::cache_control, "no-cache");
  for (const auto& [name, value] : headers) head.insert(name, value);
  for (const auto& [name, value] : extra) head.insert(name, value);
  head.keep_alive(keep_alive);
  if (version >= 11) head.chunked(true);
  return head;
}

std::string HeadBytes(const boost::beast::http::response_header<>& head) {
  std::ostringstream out;
  out << head;
  return std::move(out).str();
}

HttpResponse MakeErrorResponse(const HttpServerOptions& options, int status,
                               const std::string& message) {
  if (options.make_error) return options.make_error(status, message);
  HttpResponse response;
  response.status = status;
  response.content_type = "text/plain; charset=utf-8";
  response.body = message + "\n";
  return response;
}

}  // namespace fox
