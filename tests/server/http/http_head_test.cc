// HEAD on every route: the transport sends the head of the handler's answer
// (Content-Length of the GET body) and no body, so the connection stays in
// step for the next request.
#include <gtest/gtest.h>

#include <mutex>
#include <string>

#include "server/http/http_server.h"
#include "tests/server/http/http_test_client.h"
#include "tests/server/http/http_test_server.h"
#include "tests/support/subprocess.h"

namespace fox {
namespace {

using http_test::StartOrDie;
using http_test::TestClient;
using http_test::TestServerOptions;
using http_test::WaitFor;

const char kMetricsBody[] = "# TYPE fox_requests counter\nfox_requests 7\n";

// Routes answer HEAD as GET (as the OpenAI routes do); "/events" streams.
HttpHandler Routes(std::mutex* mutex, std::shared_ptr<HttpExchange>* stream) {
  return [mutex, stream](HttpRequest request, std::shared_ptr<HttpExchange> exchange) {
    if (request.path == "/events") {
      exchange->StartStream();
      exchange->Write("data: not for HEAD\n\n");
      std::lock_guard<std::mutex> lock(*mutex);
      *stream = exchange;
      return;
    }
    exchange->Respond(HttpResponse{200, "text/plain; version=0.0.4", {}, kMetricsBody});
  };
}

TEST(HttpHead, HeadGetsTheGetHeadWithItsContentLengthAndNoBody) {
  std::mutex mutex;
  std::shared_ptr<HttpExchange> stream;
  auto server = StartOrDie(TestServerOptions(), Routes(&mutex, &stream));
  TestClient client(server->port());
  // HEAD then GET pipelined: body bytes after the HEAD answer would be read
  // as the GET answer's status line.
  client.Send("HEAD /metrics HTTP/1.1\r\nHost: a\r\n\r\nGET /metrics HTTP/1.1\r\nHost: a\r\n\r\n");
  const auto head = client.ReadHead();
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.Header("content-length"), std::to_string(sizeof(kMetricsBody) - 1));
  EXPECT_EQ(head.Header("content-type"), "text/plain; version=0.0.4");
  const auto get = client.ReadResponse();
  EXPECT_EQ(get.status, 200);
  EXPECT_EQ(get.body, kMetricsBody);
}

TEST(HttpHead, HeadOnAStreamSendsTheStreamHeadOnly) {
  std::mutex mutex;
  std::shared_ptr<HttpExchange> stream;
  auto server = StartOrDie(TestServerOptions(), Routes(&mutex, &stream));
  TestClient client(server->port());
  client.Send("HEAD /events HTTP/1.1\r\nHost: a\r\n\r\n");
  const auto head = client.ReadHead();
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.Header("content-type"), "text/event-stream");
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard<std::mutex> lock(mutex);
    return stream != nullptr;
  }));
  std::shared_ptr<HttpExchange> exchange;
  {
    std::lock_guard<std::mutex> lock(mutex);
    exchange = stream;
  }
  exchange->Write("data: still not\n\n");
  exchange->EndStream();
  // The next request's answer is the next thing on the wire.
  client.Send("GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n");
  const auto next = client.ReadResponse();
  EXPECT_EQ(next.status, 200);
  EXPECT_EQ(next.body, kMetricsBody);
  EXPECT_FALSE(exchange->closed());
}

TEST(HttpHead, CurlHeadSeesTheLengthAndNoBody) {
  std::mutex mutex;
  std::shared_ptr<HttpExchange> stream;
  auto server = StartOrDie(TestServerOptions(), Routes(&mutex, &stream));
  const std::string url = "http://127.0.0.1:" + std::to_string(server->port()) + "/metrics";
  auto result = testing::RunProcess({"curl", "-sS", "--max-time", "5", "-I", url, url});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("Content-Length: " + std::to_string(sizeof(kMetricsBody) - 1)),
            std::string::npos)
      << result.out;
  EXPECT_EQ(result.out.find("fox_requests"), std::string::npos) << result.out;
}

}  // namespace
}  // namespace fox
