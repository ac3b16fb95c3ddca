// The HTTP request path up to routing: the bytes a client sends on one
// connection, read by the transport's own HttpRequestReader (the in-memory
// parser HttpSession feeds from its socket buffer) under the server's limits
// (64 KiB head; --max-request-bytes, here 1 KiB so that the fuzzer reaches
// it), then turned into the transport's HttpRequest (http_wire.h) with its
// CORS headers and, for OPTIONS, the preflight answer. Requests are read one
// after another from the same bytes, as pipelined on a keep-alive
// connection, until the bytes end, a request is not keep-alive, or one is
// refused (the session then answers 400/413/431 and closes).
// The first input byte seeds how the rest is cut into reads.
// Properties:
//  - nothing throws, and a refusal is 400, 413 or 431 with a message whose
//    OpenAI error body is valid JSON;
//  - the outcome (each request's method, target, version, fields, body and
//    keep-alive, then the refusal if any) is the same whether the bytes
//    arrive at once or in reads of 1 to 97 bytes;
//  - a completed request has lower-case header names, a path without '?',
//    a body within the limit, CORS header values without CR/LF, and a
//    preflight answer of 204 or 405.
#include <boost/beast/core/flat_buffer.hpp>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_support.h"
#include "nlohmann/json.hpp"
#include "server/http/http_cors.h"
#include "server/http/http_request_reader.h"
#include "server/http/http_server.h"
#include "server/http/http_wire.h"
#include "server/openai/openai_error.h"

namespace fox::fuzz {
namespace {

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

void CheckErrorBody(int status, const std::string& message) {
  FOX_FUZZ_CHECK(status == 400 || status == 413 || status == 431, absl::StrCat(status));
  FOX_FUZZ_CHECK(!message.empty(), "");
  const HttpResponse response = MakeErrorResponse(Options(), status, message);
  FOX_FUZZ_CHECK(response.status == status, absl::StrCat(response.status));
  const nlohmann::json body = nlohmann::json::parse(response.body, nullptr, false);
  FOX_FUZZ_CHECK(body.is_object(), Escaped(response.body));
}

// One completed request as text, for comparing outcomes; then what the
// session does with it (ToHttpRequest, CORS, preflight), checked.
std::string TakeRequest(BeastRequest& beast_request) {
  std::string shown = absl::StrCat(std::string(beast_request.method_string()), " ",
                                   std::string(beast_request.target()), " ",
                                   beast_request.version(), " ", beast_request.keep_alive(), "\n");
  for (const auto& field : beast_request) {
    absl::StrAppend(&shown, std::string(field.name_string()), ": ", std::string(field.value()),
                    "\n");
  }
  absl::StrAppend(&shown, "body ", beast_request.body().size(), " ", Escaped(beast_request.body()));

  HttpRequest request = ToHttpRequest(beast_request);
  FOX_FUZZ_CHECK(request.body.size() <= kMaxRequestBytes, absl::StrCat(request.body.size()));
  FOX_FUZZ_CHECK(request.path.find('?') == std::string::npos, Escaped(request.path));
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
  return shown;
}

struct Outcome {
  std::vector<std::string> requests;
  int refusal_status = 0;
  std::string refusal_message;
};

// Reads `input` as HttpSession does: a reader per request, Parse until it
// needs bytes (then one more read of the input), reports the head (the
// session answers Expect: 100-continue there and parses on), finishes or
// refuses. `seed` 0 delivers everything in one read; otherwise read sizes
// of 1 to 97 bytes come from a generator seeded with it.
Outcome Read(std::string_view input, uint32_t seed) {
  Outcome out;
  boost::beast::flat_buffer buffer;
  size_t pos = 0;
  uint32_t state = seed;
  auto read_more = [&]() -> bool {
    if (pos == input.size()) return false;
    size_t n = input.size() - pos;
    if (seed != 0) {
      state = state * 1103515245u + 12345u;
      n = std::min<size_t>(n, 1 + (state >> 16) % 97);
    }
    std::memcpy(buffer.prepare(n).data(), input.data() + pos, n);
    buffer.commit(n);
    pos += n;
    return true;
  };
  std::optional<HttpRequestReader> reader(std::in_place, kMaxRequestBytes);
  // At most 8 pipelined requests: each takes a few bytes at least, and the
  // bound keeps runs of tiny requests from dominating the time.
  while (out.requests.size() < 8) {
    switch (reader->Parse(buffer)) {
      case HttpRequestReader::State::kNeedMore:
        if (!read_more()) return out;  // the client closed (cleanly or mid-request)
        break;
      case HttpRequestReader::State::kHead:
        FOX_FUZZ_CHECK(reader->is_head_done(), "");
        break;
      case HttpRequestReader::State::kDone: {
        FOX_FUZZ_CHECK(reader->is_done(), "");
        const bool keep_alive = reader->request().keep_alive();
        out.requests.push_back(TakeRequest(reader->request()));
        if (!keep_alive) return out;
        reader.emplace(kMaxRequestBytes);
        break;
      }
      case HttpRequestReader::State::kRefused:
        out.refusal_status = reader->refusal_status();
        out.refusal_message = reader->refusal_message();
        CheckErrorBody(out.refusal_status, out.refusal_message);
        return out;
    }
  }
  return out;
}

}  // namespace
}  // namespace fox::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const fox::fuzz::Outcome whole = fox::fuzz::Read(input, 0);
  const fox::fuzz::Outcome pieces = fox::fuzz::Read(input, data[0] | 0x100u);
  auto shown = [](const fox::fuzz::Outcome& o) {
    std::string s;
    for (const std::string& r : o.requests) absl::StrAppend(&s, "[", r, "] ");
    return absl::StrCat(s, "refused ", o.refusal_status, " ", o.refusal_message);
  };
  FOX_FUZZ_CHECK(whole.requests == pieces.requests && whole.refusal_status == pieces.refusal_status,
                 absl::StrCat(fox::fuzz::Escaped(input), "\n  at once: ", shown(whole),
                              "\n  in pieces: ", shown(pieces)));
  return 0;
}
