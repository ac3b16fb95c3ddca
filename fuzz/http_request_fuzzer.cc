// The HTTP request path up to routing: bytes as a client sends them on one
// connection, read by Beast's request parser under the limits HttpSession
// sets (64 KiB head; the body limit set from --max-request-bytes once the
// head is read), then turned into the transport's HttpRequest (http_wire.h)
// with its CORS headers and, for OPTIONS, the preflight answer. Requests are
// read one after another from the same bytes, as pipelined on a keep-alive
// connection, until the bytes end or one is refused (the session answers
// 400/413/431 and closes).
//
// HttpSession reads from a socket only; there is no in-memory entry point,
// so this replays its two reads (head, then body) on the same parser type
// with the same limits. The session's code between the reads (the 413 on
// Content-Length, Expect: 100-continue) is repeated here, not called.
//
// Properties: the parser never reads past the input; a request it completes
// has a path starting with '/' or a '*'/absolute-form target as Beast gives
// it, lower-case header names, and a body no longer than the limit; the
// error body for a malformed request is valid JSON.
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_support.h"
#include "nlohmann/json.hpp"
#include "server/http/http_cors.h"
#include "server/http/http_server.h"
#include "server/http/http_wire.h"
#include "server/openai/openai_error.h"

namespace fox::fuzz {
namespace {

namespace http = boost::beast::http;
using boost::beast::error_code;

constexpr uint32_t kHeaderLimitBytes = 64 << 10;  // HttpSession's
// Small enough that the fuzzer reaches it (the server's default is 8 MiB).
constexpr size_t kMaxRequestBytes = 1 << 10;

const HttpServerOptions& Options() {
  static const HttpServerOptions* options = [] {
    auto* o = new HttpServerOptions;
    o->max_request_bytes = kMaxRequestBytes;
    o->cors_origins = {"https://allowed.example", "http://localhost:3000"};
    o->make_error = [](int status, const std::string& message) {
      return OpenAiErrorResponse(status, message);
    };
    return o;
  }();
  return *options;
}

// What Beast's read does when the socket ends: end_of_stream before any
// byte of a message, else put_eof (partial_message mid-message).
void PutEof(http::request_parser<http::string_body>& parser, error_code& ec) {
  if (!parser.got_some()) {
    ec = http::error::end_of_stream;
    return;
  }
  parser.put_eof(ec);
}

// Feeds `input` from `*pos` to the parser, as Beast's read loop does with
// what the socket delivered, until the head (or the whole message) is read,
// the parser fails, or it needs bytes the input does not have (then the
// connection ends). Advances `*pos` past what the parser consumed.
void Feed(http::request_parser<http::string_body>& parser, std::string_view input, size_t* pos,
          bool until_header, error_code& ec) {
  while (!ec && !parser.is_done() && !(until_header && parser.is_header_done())) {
    if (*pos == input.size()) return PutEof(parser, ec);
    const size_t used =
        parser.put(boost::asio::buffer(input.data() + *pos, input.size() - *pos), ec);
    FOX_FUZZ_CHECK(used <= input.size() - *pos, absl::StrCat(used));
    *pos += used;
    if (ec == http::error::need_more) {
      ec = {};
      if (used == 0) return PutEof(parser, ec);  // all it has seen, and not enough
    }
  }
}

void CheckErrorBody(int status, const std::string& message) {
  const HttpResponse response = MakeErrorResponse(Options(), status, message);
  FOX_FUZZ_CHECK(response.status == status, absl::StrCat(response.status));
  const nlohmann::json body = nlohmann::json::parse(response.body, nullptr, false);
  FOX_FUZZ_CHECK(body.is_object(), Escaped(response.body));
}

// Reads one request from `input` at `*pos`, as one turn of HttpSession's
// ReadHead/OnHead/ReadBody/OnBody/Dispatch. False when the connection ends.
bool ReadOneRequest(std::string_view input, size_t* pos) {
  std::optional<http::request_parser<http::string_body>> parser;
  parser.emplace();
  parser->eager(true);
  parser->header_limit(kHeaderLimitBytes);
  parser->body_limit(std::numeric_limits<uint64_t>::max());
  error_code ec;
  Feed(*parser, input, pos, /*until_header=*/true, ec);
  if (ec) {
    if (ec == http::error::partial_message || ec == http::error::end_of_stream) return false;
    CheckErrorBody(ec == http::error::header_limit ? 431 : 400,
                   "malformed HTTP request: " + ec.message());
    return false;
  }
  const size_t limit = Options().max_request_bytes;
  if (const auto length = parser->content_length(); length && *length > limit) {
    CheckErrorBody(413, absl::StrCat("request body is ", *length, " bytes"));
    return false;
  }
  parser->body_limit(limit);
  Feed(*parser, input, pos, /*until_header=*/false, ec);
  if (ec == http::error::body_limit) {
    CheckErrorBody(413, "request body is over the limit");
    return false;
  }
  if (ec) {
    if (ec != http::error::partial_message && ec != http::error::end_of_stream) {
      CheckErrorBody(400, "malformed HTTP request body: " + ec.message());
    }
    return false;
  }
  FOX_FUZZ_CHECK(parser->is_done(), "");

  BeastRequest& beast_request = parser->get();
  const bool keep_alive = beast_request.keep_alive();
  HttpRequest request = ToHttpRequest(beast_request);
  FOX_FUZZ_CHECK(request.body.size() <= limit, absl::StrCat(request.body.size()));
  FOX_FUZZ_CHECK(request.query.empty() || request.path.find('?') == std::string::npos,
                 Escaped(request.path));
  for (const auto& [name, value] : request.headers) {
    FOX_FUZZ_CHECK(name == absl::AsciiStrToLower(name), Escaped(name));
  }
  const HttpHeaders cors = CorsHeaders(Options().cors_origins, request.Header("origin"));
  for (const auto& [name, value] : cors) {
    FOX_FUZZ_CHECK(value.find_first_of("\r\n") == std::string::npos, Escaped(value));
  }
  if (request.method == "OPTIONS") {
    const HttpResponse preflight = PreflightResponse(Options(), request);
    FOX_FUZZ_CHECK(preflight.status == 204 || preflight.status == 405,
                   absl::StrCat(preflight.status));
  }
  return keep_alive;
}

}  // namespace
}  // namespace fox::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t pos = 0;
  // At most 8 pipelined requests: each takes at least a few bytes, and the
  // bound keeps a run of tiny requests from dominating the time.
  for (int i = 0; i < 8 && pos < input.size(); ++i) {
    const size_t before = pos;
    if (!fox::fuzz::ReadOneRequest(input, &pos) || pos == before) break;
  }
  return 0;
}
