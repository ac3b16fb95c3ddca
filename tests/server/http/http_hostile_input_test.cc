// Client bytes that once could end the process or grow a buffer without
// bound: a trailer field of 64 KiB or more (Beast throws std::length_error on
// it), trailers and chunk extensions past the head limit, and a parser
// exception of any kind. Each is refused on its own connection while the
// server goes on serving others.
#include <gtest/gtest.h>

#include <atomic>
#include <string>

#include "server/http/http_request_reader.h"
#include "server/http/http_server.h"
#include "tests/server/http/http_test_client.h"
#include "tests/server/http/http_test_server.h"

namespace fox {
namespace {

using http_test::StartOrDie;
using http_test::TestClient;
using http_test::TestServerOptions;

HttpHandler BodyEcho(std::atomic<int>* num_calls) {
  return [num_calls](HttpRequest request, std::shared_ptr<HttpExchange> exchange) {
    ++*num_calls;
    exchange->Respond(HttpResponse{200, "text/plain", {}, "body=" + request.body});
  };
}

const char kChunkedHead[] =
    "POST /v1/completions HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";

// The server still answers a plain request on a fresh connection.
void ExpectStillServing(int port, std::atomic<int>* num_calls) {
  const int before = num_calls->load();
  TestClient client(port);
  client.Send("POST /ok HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi");
  const auto response = client.ReadResponse();
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "body=hi");
  EXPECT_EQ(num_calls->load(), before + 1);
}

// The regression: this request used to make Beast throw std::length_error
// on an I/O thread, which nothing caught, so the process aborted.
TEST(HttpHostileInput, SeventyKibTrailerValueGets431AndTheServerLives) {
  std::atomic<int> num_calls{0};
  auto server = StartOrDie(TestServerOptions(), BodyEcho(&num_calls));
  TestClient client(server->port());
  client.Send(std::string(kChunkedHead) + "3\r\nabc\r\n0\r\nX-Big: " + std::string(70 << 10, 'v') +
              "\r\n\r\n");
  const auto response = client.ReadResponse();
  EXPECT_EQ(response.status, 431);
  EXPECT_EQ(response.body, "request chunk-size line or trailers are over 65536 bytes\n");
  EXPECT_EQ(response.Header("connection"), "close");
  EXPECT_TRUE(client.IsEof());
  EXPECT_EQ(num_calls.load(), 0);
  ExpectStillServing(server->port(), &num_calls);
}

TEST(HttpHostileInput, SeventyKibTrailerNameGets431) {
  std::atomic<int> num_calls{0};
  auto server = StartOrDie(TestServerOptions(), BodyEcho(&num_calls));
  TestClient client(server->port());
  client.Send(std::string(kChunkedHead) + "3\r\nabc\r\n0\r\n" + std::string(70 << 10, 'n') +
              ": v\r\n\r\n");
  EXPECT_EQ(client.ReadResponse().status, 431);
  EXPECT_TRUE(client.IsEof());
  ExpectStillServing(server->port(), &num_calls);
}

// Sent in small pieces, the trailer reaches the server over many reads.
TEST(HttpHostileInput, TrickledOversizedTrailerGets431) {
  std::atomic<int> num_calls{0};
  auto server = StartOrDie(TestServerOptions(), BodyEcho(&num_calls));
  TestClient client(server->port());
  client.Send(std::string(kChunkedHead) + "3\r\nabc\r\n0\r\nX-Big: ");
  bool refused = false;
  for (int i = 0; i < 80 && !refused; ++i) {
    try {
      client.Send(std::string(1 << 10, 'v'));
    } catch (const std::exception&) {
      refused = true;  // the server answered and closed while we sent
    }
  }
  EXPECT_EQ(client.ReadResponse().status, 431);
  ExpectStillServing(server->port(), &num_calls);
}

TEST(HttpHostileInput, ChunkExtensionOverTheHeadLimitGets431) {
  std::atomic<int> num_calls{0};
  auto server = StartOrDie(TestServerOptions(), BodyEcho(&num_calls));
  TestClient client(server->port());
  client.Send(std::string(kChunkedHead) + "3;ext=" + std::string(70 << 10, 'e') +
              "\r\nabc\r\n0\r\n\r\n");
  EXPECT_EQ(client.ReadResponse().status, 431);
  EXPECT_TRUE(client.IsEof());
  EXPECT_EQ(num_calls.load(), 0);
  ExpectStillServing(server->port(), &num_calls);
}

// Trailers and extensions within the limit are fine (and ignored).
TEST(HttpHostileInput, TrailersAndExtensionsWithinTheLimitAreAccepted) {
  std::atomic<int> num_calls{0};
  auto server = StartOrDie(TestServerOptions(), BodyEcho(&num_calls));
  TestClient client(server->port());
  client.Send(std::string(kChunkedHead) + "3;name=value\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: " +
              std::string(60 << 10, 's') + "\r\nX-Other: 1\r\n\r\n");
  const auto response = client.ReadResponse();
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "body=abcde");
  // Keep-alive survives: the next request on the same connection is served.
  client.Send("POST /ok HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx");
  EXPECT_EQ(client.ReadResponse().body, "body=x");
}

TEST(HttpHostileInput, HeadOverTheLimitGets431) {
  std::atomic<int> num_calls{0};
  auto server = StartOrDie(TestServerOptions(), BodyEcho(&num_calls));
  TestClient client(server->port());
  client.Send("GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(70 << 10, 'h') + "\r\n\r\n");
  const auto response = client.ReadResponse();
  EXPECT_EQ(response.status, 431);
  EXPECT_EQ(response.body, "request head is over 65536 bytes\n");
  ExpectStillServing(server->port(), &num_calls);
}

// The reader on its own: whatever bytes it gets, it answers with a state
// and never throws, and it never holds more than the window unparsed.
TEST(HttpRequestReader, RefusesAnOversizedTrailerWithoutThrowing) {
  HttpRequestReader reader(1 << 20);
  boost::beast::flat_buffer buffer;
  const std::string bytes = std::string(kChunkedHead) +
                            "3\r\nabc\r\n0\r\nX-Big: " + std::string(70 << 10, 'v') + "\r\n\r\n";
  boost::asio::buffer_copy(buffer.prepare(bytes.size()), boost::asio::buffer(bytes));
  buffer.commit(bytes.size());
  EXPECT_EQ(reader.Parse(buffer), HttpRequestReader::State::kHead);
  EXPECT_EQ(reader.Parse(buffer), HttpRequestReader::State::kRefused);
  EXPECT_EQ(reader.refusal_status(), 431);
  EXPECT_EQ(reader.Parse(buffer), HttpRequestReader::State::kRefused) << "a refusal sticks";
}

TEST(HttpRequestReader, ReadsPipelinedRequestsOneAtATime) {
  boost::beast::flat_buffer buffer;
  const std::string bytes =
      "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\nHost: "
      "a\r\n\r\nGET /c";
  boost::asio::buffer_copy(buffer.prepare(bytes.size()), boost::asio::buffer(bytes));
  buffer.commit(bytes.size());
  HttpRequestReader first(100);
  EXPECT_EQ(first.Parse(buffer), HttpRequestReader::State::kHead);
  EXPECT_EQ(first.Parse(buffer), HttpRequestReader::State::kDone);
  EXPECT_EQ(first.request().body(), "abc");
  HttpRequestReader second(100);
  EXPECT_EQ(second.Parse(buffer), HttpRequestReader::State::kHead);
  EXPECT_EQ(second.Parse(buffer), HttpRequestReader::State::kDone);
  EXPECT_EQ(second.request().target(), "/b");
  HttpRequestReader third(100);
  EXPECT_EQ(third.Parse(buffer), HttpRequestReader::State::kNeedMore);
  EXPECT_TRUE(third.got_some());
}

TEST(HttpRequestReader, DeclaredLengthOverTheLimitIsRefusedAtTheHead) {
  boost::beast::flat_buffer buffer;
  const std::string bytes = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n";
  boost::asio::buffer_copy(buffer.prepare(bytes.size()), boost::asio::buffer(bytes));
  buffer.commit(bytes.size());
  HttpRequestReader reader(100);
  EXPECT_EQ(reader.Parse(buffer), HttpRequestReader::State::kRefused);
  EXPECT_EQ(reader.refusal_status(), 413);
  EXPECT_EQ(reader.refusal_message(),
            "request body is 101 bytes, over the --max-request-bytes limit of 100");
}

}  // namespace
}  // namespace fox
