// HttpServer request handling: round trips and keep-alive, the request body
// limit, malformed requests, HTTP/1.0 and Connection: close, timeouts, binding.
#include "server/http/http_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>

#include "tests/server/http/http_test_client.h"
#include "tests/server/http/http_test_server.h"
#include "tests/support/subprocess.h"

namespace fox {
namespace {

using http_test::StartOrDie;
using http_test::TestClient;
using http_test::TestServerOptions;

// Echoes what it was given, so each test can check the parsed request.
HttpHandler EchoHandler(std::atomic<int>* num_calls) {
  return [num_calls](HttpRequest request, std::shared_ptr<HttpExchange> exchange) {
    if (num_calls) ++*num_calls;
    HttpResponse response;
    response.content_type = "text/plain";
    response.body = request.method + " " + request.path + " q=" + request.query +
                    " x-test=" + request.Header("x-test") + " body=" + request.body;
    response.headers.emplace_back("X-Body-Bytes", std::to_string(request.body.size()));
    exchange->Respond(std::move(response));
  };
}

TEST(HttpServer, GetThenPostOnOneKeepAliveConnection) {
  std::atomic<int> num_calls{0};
  auto server = StartOrDie(TestServerOptions(), EchoHandler(&num_calls));
  TestClient client(server->port());
  client.Send("GET /v1/models?limit=2&x=y HTTP/1.1\r\nHost: a\r\nX-TEST: one\r\n\r\n");
  auto first = client.ReadResponse();
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(first.Header("content-type"), "text/plain");
  EXPECT_EQ(first.body, "GET /v1/models q=limit=2&x=y x-test=one body=");
  EXPECT_EQ(first.Header("content-length"), std::to_string(first.body.size()));
  EXPECT_EQ(first.Header("x-body-bytes"), "0");

  client.Send(
      "POST /v1/completions HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
      "Content-Length: 13\r\n\r\n{\"prompt\":42}");
  auto second = client.ReadResponse();
  EXPECT_EQ(second.status, 200);
  EXPECT_EQ(second.body, "POST /v1/completions q= x-test= body={\"prompt\":42}");
  EXPECT_EQ(num_calls.load(), 2);
  EXPECT_EQ(server->num_connections(), 1);  // both on the same connection
}

TEST(HttpServer, HeaderNamesAreLowerCasedAndRepeatsKept) {
  std::mutex mutex;
  HttpRequest seen;
  auto server = StartOrDie(TestServerOptions(), [&](HttpRequest request, auto exchange) {
    std::lock_guard<std::mutex> lock(mutex);
    seen = request;
    exchange->Respond(HttpResponse{});
  });
  TestClient client(server->port());
  client.Send(
      "GET / HTTP/1.1\r\nHost: a\r\nX-Multi: 1\r\nx-multi: 2\r\nAuthorization: Bearer k\r\n\r\n");
  EXPECT_EQ(client.ReadResponse().status, 200);
  std::lock_guard<std::mutex> lock(mutex);
  int num_multi = 0;
  for (const auto& [name, value] : seen.headers) num_multi += name == "x-multi";
  EXPECT_EQ(num_multi, 2);
  EXPECT_EQ(seen.Header("authorization"), "Bearer k");
  EXPECT_EQ(seen.Header("x-multi"), "1");
}

TEST(HttpServer, StatusAndExtraHeadersAreWritten) {
  auto server = StartOrDie(TestServerOptions(), [](HttpRequest, auto exchange) {
    HttpResponse response;
    response.status = 429;
    response.body = "{\"error\":\"busy\"}";
    response.headers = {{"Retry-After", "3"}};
    exchange->Respond(std::move(response));
  });
  TestClient client(server->port());
  client.Send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  auto response = client.ReadResponse();
  EXPECT_EQ(response.status, 429);
  EXPECT_EQ(response.Header("retry-after"), "3");
  EXPECT_EQ(response.Header("content-type"), "application/json");
  EXPECT_EQ(response.body, "{\"error\":\"busy\"}");
}

TEST(HttpServer, RespondFromAnotherThread) {
  std::vector<std::thread> threads;
  std::mutex mutex;
  auto server = StartOrDie(TestServerOptions(), [&](HttpRequest request, auto exchange) {
    std::lock_guard<std::mutex> lock(mutex);
    threads.emplace_back([exchange, path = request.path] {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      exchange->Respond(HttpResponse{200, "text/plain", {}, "late " + path});
    });
  });
  TestClient client(server->port());
  client.Send("GET /a HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(client.ReadResponse().body, "late /a");
  client.Send("GET /b HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(client.ReadResponse().body, "late /b");
  std::lock_guard<std::mutex> lock(mutex);
  for (auto& thread : threads) thread.join();
}

HttpServerOptions LimitedOptions(size_t max_request_bytes) {
  HttpServerOptions options = TestServerOptions();
  options.max_request_bytes = max_request_bytes;
  options.make_error = [](int status, const std::string& message) {
    return HttpResponse{
        status, "application/json", {}, "{\"error\":{\"message\":\"" + message + "\"}}"};
  };
  return options;
}

TEST(HttpServer, OversizedContentLengthGets413WithoutReadingTheBody) {
  std::atomic<int> num_calls{0};
  auto server = StartOrDie(LimitedOptions(8388608), EchoHandler(&num_calls));
  TestClient client(server->port());
  // Only the head is sent: a server that waited for the body would never answer.
  client.Send("POST /v1/completions HTTP/1.1\r\nHost: a\r\nContent-Length: 9000000\r\n\r\n");
  auto response = client.ReadResponse();
  EXPECT_EQ(response.status, 413);
  EXPECT_EQ(response.Header("content-type"), "application/json");
  EXPECT_EQ(response.body,
            "{\"error\":{\"message\":\"request body is 9000000 bytes, over the "
            "--max-request-bytes limit of 8388608\"}}");
  EXPECT_EQ(response.Header("connection"), "close");
  EXPECT_TRUE(client.IsEof());
  EXPECT_EQ(num_calls.load(), 0);
}

TEST(HttpServer, BodyAtTheLimitIsAccepted) {
  auto server = StartOrDie(LimitedOptions(1000), EchoHandler(nullptr));
  TestClient client(server->port());
  client.Send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n" +
              std::string(1000, 'b'));
  auto response = client.ReadResponse();
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.Header("x-body-bytes"), "1000");
}

TEST(HttpServer, OversizedChunkedBodyGets413) {
  std::atomic<int> num_calls{0};
  auto server = StartOrDie(LimitedOptions(1000), EchoHandler(&num_calls));
  TestClient client(server->port());
  std::string request = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 3; ++i) request += "190\r\n" + std::string(400, 'x') + "\r\n";  // 1200 bytes
  request += "0\r\n\r\n";
  client.Send(request);
  auto response = client.ReadResponse();
  EXPECT_EQ(response.status, 413);
  EXPECT_NE(response.body.find("over the --max-request-bytes limit of 1000"), std::string::npos)
      << response.body;
  EXPECT_TRUE(client.IsEof());
  EXPECT_EQ(num_calls.load(), 0);
}

TEST(HttpServer, ChunkedBodyWithinTheLimitIsDecoded) {
  auto server = StartOrDie(LimitedOptions(1000), EchoHandler(nullptr));
  TestClient client(server->port());
  client.Send(
      "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n");
  auto response = client.ReadResponse();
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "POST /c q= x-test= body=abcdefg");
}

TEST(HttpServer, MalformedRequestGets400AndClose) {
  std::atomic<int> num_calls{0};
  auto server = StartOrDie(TestServerOptions(), EchoHandler(&num_calls));
  TestClient client(server->port());
  client.Send("GET / HTTP/1.1\r\nHost: a\r\nthis is not a header\r\n\r\n");
  auto response = client.ReadResponse();
  EXPECT_EQ(response.status, 400);
  EXPECT_EQ(response.Header("content-type"), "text/plain; charset=utf-8");
  EXPECT_EQ(response.body.rfind("malformed HTTP request", 0), 0u) << response.body;
  EXPECT_TRUE(client.IsEof());
  EXPECT_EQ(num_calls.load(), 0);
}

TEST(HttpServer, BadContentLengthGets400) {
  auto server = StartOrDie(TestServerOptions(), EchoHandler(nullptr));
  TestClient client(server->port());
  client.Send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: twelve\r\n\r\n");
  EXPECT_EQ(client.ReadResponse().status, 400);
  EXPECT_TRUE(client.IsEof());
}

TEST(HttpServer, Http10ConnectionClosesAfterTheResponse) {
  auto server = StartOrDie(TestServerOptions(), EchoHandler(nullptr));
  TestClient client(server->port());
  client.Send("GET /old HTTP/1.0\r\n\r\n");
  auto response = client.ReadResponse();
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "GET /old q= x-test= body=");
  EXPECT_TRUE(client.IsEof());
}

TEST(HttpServer, ConnectionCloseIsHonoured) {
  auto server = StartOrDie(TestServerOptions(), EchoHandler(nullptr));
  TestClient client(server->port());
  client.Send("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  auto response = client.ReadResponse();
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.Header("connection"), "close");
  EXPECT_TRUE(client.IsEof());
  client.Close();
  EXPECT_TRUE(http_test::WaitFor([&] { return server->num_connections() == 0; },
                                 std::chrono::milliseconds(1000)));
}

TEST(HttpServer, PipelinedRequestsAreServedInOrder) {
  auto server = StartOrDie(TestServerOptions(), EchoHandler(nullptr));
  TestClient client(server->port());
  client.Send("GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(client.ReadResponse().body, "GET /1 q= x-test= body=");
  EXPECT_EQ(client.ReadResponse().body, "GET /2 q= x-test= body=");
}

TEST(HttpServer, UnfinishedHeadIsClosedAfterTheHeaderTimeout) {
  HttpServerOptions options = TestServerOptions();
  options.header_timeout = std::chrono::milliseconds(200);
  auto server = StartOrDie(options, EchoHandler(nullptr));
  TestClient client(server->port(), std::chrono::seconds(3));
  const auto start = std::chrono::steady_clock::now();
  client.Send("GET / HTTP/1.1\r\n");  // an unfinished head
  EXPECT_TRUE(client.IsEof());
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_GE(elapsed, std::chrono::milliseconds(150));
  EXPECT_LT(elapsed, std::chrono::milliseconds(2000));
  EXPECT_TRUE(http_test::WaitFor([&] { return server->num_connections() == 0; }));
}

TEST(HttpServer, StalledBodyIsClosedAfterTheBodyTimeout) {
  HttpServerOptions options = TestServerOptions();
  options.body_timeout = std::chrono::milliseconds(200);
  std::atomic<int> num_calls{0};
  auto server = StartOrDie(options, EchoHandler(&num_calls));
  TestClient client(server->port(), std::chrono::seconds(3));
  client.Send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc");
  EXPECT_TRUE(client.IsEof());
  EXPECT_EQ(num_calls.load(), 0);
}

TEST(HttpServer, ReadTimeoutsDoNotCutASlowResponse) {
  HttpServerOptions options = TestServerOptions();
  options.header_timeout = std::chrono::milliseconds(100);
  options.body_timeout = std::chrono::milliseconds(100);
  options.keep_alive_timeout = std::chrono::milliseconds(100);
  std::thread responder;
  auto server = StartOrDie(options, [&](HttpRequest, std::shared_ptr<HttpExchange> exchange) {
    responder = std::thread([exchange] {
      std::this_thread::sleep_for(std::chrono::milliseconds(400));
      exchange->Respond(HttpResponse{200, "text/plain", {}, "slow"});
    });
  });
  TestClient client(server->port());
  client.Send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(client.ReadResponse().body, "slow");
  responder.join();
}

TEST(HttpServer, BindErrorIsUnavailableAndNamesTheAddress) {
  auto first = StartOrDie(TestServerOptions(), EchoHandler(nullptr));
  HttpServerOptions options = TestServerOptions();
  options.port = first->port();
  auto second = HttpServer::Start(options, EchoHandler(nullptr));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find("127.0.0.1:" + std::to_string(first->port())),
            std::string::npos)
      << second.status();
}

TEST(HttpServer, PortZeroPicksAPort) {
  auto server = StartOrDie(TestServerOptions(), EchoHandler(nullptr));
  EXPECT_GT(server->port(), 0);
  EXPECT_NE(server->port(), 8000);
}

TEST(HttpServer, HandlerExceptionBecomes500) {
  auto server = StartOrDie(TestServerOptions(), [](HttpRequest, std::shared_ptr<HttpExchange>) {
    throw std::runtime_error("boom");
  });
  TestClient client(server->port());
  client.Send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  auto response = client.ReadResponse();
  EXPECT_EQ(response.status, 500);
  EXPECT_NE(response.body.find("boom"), std::string::npos);
}

TEST(HttpServer, StopIsIdempotentAndClosesIdleConnections) {
  auto server = StartOrDie(TestServerOptions(), EchoHandler(nullptr));
  TestClient client(server->port());
  client.Send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(client.ReadResponse().status, 200);
  server->Stop();
  EXPECT_TRUE(client.IsEof());
  EXPECT_EQ(server->num_connections(), 0);
  server->Stop();
}

// curl as the client: connection reuse across two URLs, and a 2 MB upload
// (curl sends `Expect: 100-continue` for it, which the server must answer).
TEST(HttpServer, CurlReusesTheConnectionAndUploadsWith100Continue) {
  auto server = StartOrDie(TestServerOptions(), EchoHandler(nullptr));
  const std::string base = "http://127.0.0.1:" + std::to_string(server->port());
  auto reuse =
      testing::RunProcess({"curl", "-sS", "-v", "--max-time", "10", base + "/one", base + "/two"});
  ASSERT_EQ(reuse.exit_code, 0) << reuse.err;
  EXPECT_EQ(reuse.out, "GET /one q= x-test= body=GET /two q= x-test= body=");
  EXPECT_NE(reuse.err.find("Re-using existing connection"), std::string::npos) << reuse.err;

  const std::string body(2 << 20, 'z');
  auto upload = testing::RunProcess(
      {"curl", "-sS", "-v", "--max-time", "10", "-H", "Content-Type: application/octet-stream",
       "--data-binary", "@-", "-o", "/dev/null", "-D", "-", base + "/upload"},
      body);
  ASSERT_EQ(upload.exit_code, 0) << upload.err;
  EXPECT_NE(upload.err.find("HTTP/1.1 100 Continue"), std::string::npos) << upload.err;
  EXPECT_NE(upload.out.find("X-Body-Bytes: " + std::to_string(body.size())), std::string::npos)
      << upload.out;
}

TEST(HttpServer, CurlSeesThe413) {
  auto server = StartOrDie(LimitedOptions(1000), EchoHandler(nullptr));
  const std::string url = "http://127.0.0.1:" + std::to_string(server->port()) + "/v1/completions";
  auto result = testing::RunProcess(
      {"curl", "-sS", "--max-time", "10", "-w", "\n%{http_code}", "--data-binary", "@-", url},
      std::string(5000, 'q'));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out,
            "{\"error\":{\"message\":\"request body is 5000 bytes, over the --max-request-bytes "
            "limit of 1000\"}}\n413");
}

}  // namespace
}  // namespace fox
