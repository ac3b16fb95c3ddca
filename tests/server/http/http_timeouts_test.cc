// The read-side deadlines: a request head must be complete within the header
// timeout (so a client trickling its head, slowloris, is closed while others
// are served), and a kept-alive connection idle for the keep-alive timeout is
// closed, while one whose next request has begun gets the header timeout.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "server/http/http_server.h"
#include "tests/server/http/http_test_client.h"
#include "tests/server/http/http_test_server.h"

namespace fox {
namespace {

using http_test::StartOrDie;
using http_test::TestClient;
using http_test::TestServerOptions;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

HttpHandler Ok(std::atomic<int>* num_calls) {
  return [num_calls](HttpRequest request, std::shared_ptr<HttpExchange> exchange) {
    ++*num_calls;
    exchange->Respond(HttpResponse{200, "text/plain", {}, "ok " + request.path});
  };
}

TEST(HttpTimeouts, HeadSentAByteASecondIsClosedAtTheHeaderTimeoutWhileOthersAreServed) {
  HttpServerOptions options = TestServerOptions();
  options.header_timeout = milliseconds(2500);
  std::atomic<int> num_calls{0};
  auto server = StartOrDie(options, Ok(&num_calls));
  TestClient slow(server->port());
  const std::string head = "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n";
  const auto start = Clock::now();
  bool closed = false;
  int num_served = 0;
  for (size_t i = 0; i < head.size() && !closed; ++i) {
    try {
      slow.Send(head.substr(i, 1));
    } catch (const std::exception&) {
      closed = true;  // reset by the server: it closed before this byte
      break;
    }
    // Another client is served meanwhile, on a connection of its own.
    TestClient other(server->port());
    other.Send("GET /fast HTTP/1.1\r\nHost: a\r\n\r\n");
    num_served += other.ReadResponse().body == "ok /fast";
    const auto next_byte = start + milliseconds(1000) * (i + 1);
    closed = slow.WaitEof(std::chrono::duration_cast<milliseconds>(next_byte - Clock::now()));
  }
  const auto elapsed = Clock::now() - start;
  EXPECT_TRUE(closed);
  EXPECT_GE(elapsed, milliseconds(2400));
  EXPECT_LT(elapsed, milliseconds(4000));
  EXPECT_GE(num_served, 3);
  EXPECT_EQ(num_calls.load(), num_served) << "the slow head never reached the handler";
  EXPECT_TRUE(http_test::WaitFor([&] { return server->num_connections() == 0; }));
}

TEST(HttpTimeouts, IdleKeptAliveConnectionIsClosedAfterTheKeepAliveTimeout) {
  HttpServerOptions options = TestServerOptions();
  options.keep_alive_timeout = milliseconds(300);
  std::atomic<int> num_calls{0};
  auto server = StartOrDie(options, Ok(&num_calls));
  TestClient client(server->port());
  // Requests that come within the timeout keep the connection.
  for (int i = 0; i < 3; ++i) {
    client.Send("GET /" + std::to_string(i) + " HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_EQ(client.ReadResponse().body, "ok /" + std::to_string(i));
    std::this_thread::sleep_for(milliseconds(150));
  }
  EXPECT_FALSE(client.WaitEof(milliseconds(50)));
  const auto idle_since = Clock::now() - milliseconds(200);  // the last response, about
  EXPECT_TRUE(client.WaitEof(milliseconds(3000)));
  const auto idle = Clock::now() - idle_since;
  EXPECT_GE(idle, milliseconds(250));
  EXPECT_LT(idle, milliseconds(1500));
  EXPECT_EQ(num_calls.load(), 3);
  EXPECT_TRUE(http_test::WaitFor([&] { return server->num_connections() == 0; }));
}

// The keep-alive timeout is for idling between requests; a new connection
// and a request already begun get the header timeout.
TEST(HttpTimeouts, HeaderTimeoutNotKeepAliveTimeoutAppliesOnceARequestHasBegun) {
  HttpServerOptions options = TestServerOptions();
  options.keep_alive_timeout = milliseconds(200);
  options.header_timeout = milliseconds(900);
  std::atomic<int> num_calls{0};
  auto server = StartOrDie(options, Ok(&num_calls));

  TestClient silent(server->port());  // sends nothing at all
  const auto start = Clock::now();

  TestClient client(server->port());
  client.Send("GET /first HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(client.ReadResponse().body, "ok /first");
  std::this_thread::sleep_for(milliseconds(100));
  client.Send("G");  // the next request begins within the keep-alive timeout...
  std::this_thread::sleep_for(milliseconds(400));  // ...and is finished after it
  client.Send("ET /second HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(client.ReadResponse().body, "ok /second");

  EXPECT_FALSE(silent.WaitEof(milliseconds(0)));  // 500 ms in: past the keep-alive timeout
  EXPECT_TRUE(silent.WaitEof(milliseconds(2000)));
  EXPECT_GE(Clock::now() - start, milliseconds(850));
}

}  // namespace
}  // namespace fox
