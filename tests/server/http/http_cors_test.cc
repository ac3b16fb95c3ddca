// CORS in HttpServer: preflight answered by the transport, the allowed-origin
// header on responses and streams, and no CORS at all when unconfigured.
#include <gtest/gtest.h>

#include <atomic>
#include <string>

#include "server/http/http_server.h"
#include "tests/server/http/http_test_client.h"

namespace fox {
namespace {

using http_test::TestClient;

struct CorsServer {
  std::atomic<int> num_calls{0};
  std::unique_ptr<HttpServer> server;

  explicit CorsServer(std::vector<std::string> origins) {
    HttpServerOptions options;
    options.port = 0;
    options.cors_origins = std::move(origins);
    auto started = HttpServer::Start(options, [this](HttpRequest request, auto exchange) {
      ++num_calls;
      if (request.path == "/stream") {
        exchange->StartStream();
        exchange->Write("data: 1\n\n");
        exchange->EndStream();
        return;
      }
      exchange->Respond(HttpResponse{200, "text/plain", {}, request.method + " " + request.path});
    });
    EXPECT_TRUE(started.ok()) << started.status();
    server = std::move(started).value();
  }
};

TEST(HttpCors, PreflightIsAnsweredByTheServerForAnyOrigin) {
  CorsServer cors({"*"});
  TestClient client(cors.server->port());
  client.Send(
      "OPTIONS /v1/chat/completions HTTP/1.1\r\nHost: a\r\nOrigin: https://app.example\r\n"
      "Access-Control-Request-Method: POST\r\n"
      "Access-Control-Request-Headers: authorization, x-custom\r\n\r\n");
  auto response = client.ReadResponse();
  EXPECT_EQ(response.status, 204);
  EXPECT_EQ(response.Header("access-control-allow-origin"), "*");
  EXPECT_EQ(response.Header("access-control-allow-methods"), "GET, POST, OPTIONS");
  EXPECT_EQ(response.Header("access-control-allow-headers"), "authorization, x-custom");
  EXPECT_EQ(response.Header("access-control-max-age"), "86400");
  EXPECT_EQ(response.Header("content-length"), "");
  EXPECT_EQ(response.body, "");
  EXPECT_EQ(cors.num_calls.load(), 0);

  // Keep-alive after the preflight; the actual request carries the header too.
  client.Send(
      "POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nOrigin: https://app.example\r\n"
      "Content-Length: 0\r\n\r\n");
  auto actual = client.ReadResponse();
  EXPECT_EQ(actual.status, 200);
  EXPECT_EQ(actual.Header("access-control-allow-origin"), "*");
  EXPECT_EQ(actual.CountHeader("vary"), 0);
  EXPECT_EQ(cors.num_calls.load(), 1);
}

TEST(HttpCors, PreflightWithoutRequestedHeadersAllowsTheDefaults) {
  CorsServer cors({"*"});
  TestClient client(cors.server->port());
  client.Send(
      "OPTIONS /v1/models HTTP/1.1\r\nHost: a\r\nOrigin: https://x\r\n"
      "Access-Control-Request-Method: GET\r\n\r\n");
  auto response = client.ReadResponse();
  EXPECT_EQ(response.status, 204);
  EXPECT_EQ(response.Header("access-control-allow-headers"), "Authorization, Content-Type");
}

TEST(HttpCors, PreflightForAnUnservedMethodGets405) {
  CorsServer cors({"*"});
  TestClient client(cors.server->port());
  client.Send(
      "OPTIONS /v1/models HTTP/1.1\r\nHost: a\r\nOrigin: https://x\r\n"
      "Access-Control-Request-Method: DELETE\r\n\r\n");
  auto response = client.ReadResponse();
  EXPECT_EQ(response.status, 405);
  EXPECT_EQ(response.Header("allow"), "GET, POST, OPTIONS");
  EXPECT_NE(response.body.find("DELETE"), std::string::npos);
}

TEST(HttpCors, ListedOriginIsEchoedWithVaryAndOthersGetNoAllowOrigin) {
  CorsServer cors({"https://a.example", "https://b.example"});
  TestClient client(cors.server->port());
  client.Send("GET /x HTTP/1.1\r\nHost: a\r\nOrigin: https://b.example\r\n\r\n");
  auto listed = client.ReadResponse();
  EXPECT_EQ(listed.Header("access-control-allow-origin"), "https://b.example");
  EXPECT_EQ(listed.Header("vary"), "Origin");

  client.Send("GET /x HTTP/1.1\r\nHost: a\r\nOrigin: https://evil.example\r\n\r\n");
  auto unlisted = client.ReadResponse();
  EXPECT_EQ(unlisted.status, 200);
  EXPECT_EQ(unlisted.CountHeader("access-control-allow-origin"), 0);
  EXPECT_EQ(unlisted.Header("vary"), "Origin");

  client.Send(
      "OPTIONS /x HTTP/1.1\r\nHost: a\r\nOrigin: https://a.example\r\n"
      "Access-Control-Request-Method: POST\r\n\r\n");
  auto preflight = client.ReadResponse();
  EXPECT_EQ(preflight.status, 204);
  EXPECT_EQ(preflight.Header("access-control-allow-origin"), "https://a.example");
  EXPECT_EQ(cors.num_calls.load(), 2);
}

TEST(HttpCors, StreamsCarryTheAllowOriginHeader) {
  CorsServer cors({"https://a.example"});
  TestClient client(cors.server->port());
  client.Send("GET /stream HTTP/1.1\r\nHost: a\r\nOrigin: https://a.example\r\n\r\n");
  auto response = client.ReadResponse();
  EXPECT_EQ(response.Header("content-type"), "text/event-stream");
  EXPECT_EQ(response.Header("access-control-allow-origin"), "https://a.example");
  EXPECT_EQ(response.body, "data: 1\n\n");
}

TEST(HttpCors, ErrorsFromTheTransportCarryTheAllowOriginHeader) {
  CorsServer cors({"*"});
  TestClient client(cors.server->port());
  client.Send(
      "POST / HTTP/1.1\r\nHost: a\r\nOrigin: https://x\r\nContent-Length: 99999999999\r\n\r\n");
  auto response = client.ReadResponse();
  EXPECT_EQ(response.status, 413);
  EXPECT_EQ(response.Header("access-control-allow-origin"), "*");
}

TEST(HttpCors, WithoutOriginsOptionsGoesToTheHandlerAndNoHeadersAreAdded) {
  CorsServer cors({});
  TestClient client(cors.server->port());
  client.Send(
      "OPTIONS /v1/models HTTP/1.1\r\nHost: a\r\nOrigin: https://x\r\n"
      "Access-Control-Request-Method: GET\r\n\r\n");
  auto response = client.ReadResponse();
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "OPTIONS /v1/models");
  EXPECT_EQ(response.CountHeader("access-control-allow-origin"), 0);
  EXPECT_EQ(response.CountHeader("vary"), 0);
  EXPECT_EQ(cors.num_calls.load(), 1);
}

}  // namespace
}  // namespace fox
