// Event streams through HttpServer: chunked framing, ordering and batching of
// writes from other threads, keep-alive comments, connection reuse, and what
// happens when the client goes away or the server stops mid-stream.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "server/http/http_server.h"
#include "tests/server/http/http_test_client.h"
#include "tests/server/http/http_test_server.h"

namespace fox {
namespace {

using http_test::StartOrDie;
using http_test::TestClient;
using http_test::TestServerOptions;
using http_test::WaitFor;

// Collects the exchanges a streaming handler opened, and counts on-close runs.
struct Streams {
  std::mutex mutex;
  std::vector<std::shared_ptr<HttpExchange>> exchanges;
  std::atomic<int> num_closed{0};

  std::shared_ptr<HttpExchange> Get(size_t i) {
    std::lock_guard<std::mutex> lock(mutex);
    return i < exchanges.size() ? exchanges[i] : nullptr;
  }
  size_t size() {
    std::lock_guard<std::mutex> lock(mutex);
    return exchanges.size();
  }
};

// Opens a stream per request, writes "data: open <path>\n\n", keeps the
// exchange for the test, and counts on-close runs. "/plain" answers in full.
HttpHandler StreamingHandler(Streams* streams) {
  return [streams](HttpRequest request, std::shared_ptr<HttpExchange> exchange) {
    exchange->OnClose([streams] { ++streams->num_closed; });
    if (request.path == "/plain") {
      exchange->Respond(HttpResponse{200, "text/plain", {}, "plain"});
      return;
    }
    exchange->StartStream({{"X-Request-Id", "r1"}});
    exchange->Write("data: open " + request.path + "\n\n");
    std::lock_guard<std::mutex> lock(streams->mutex);
    streams->exchanges.push_back(std::move(exchange));
  };
}

TEST(HttpStream, ChunkedEventsFromAnotherThreadArriveInOrderThenConnectionIsReused) {
  Streams streams;
  auto server = StartOrDie(TestServerOptions(), StreamingHandler(&streams));
  TestClient client(server->port());
  client.Send("POST /v1/completions HTTP/1.1\r\nHost: a\r\n\r\n");
  auto head = client.ReadHead();
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.Header("content-type"), "text/event-stream");
  EXPECT_EQ(head.Header("cache-control"), "no-cache");
  EXPECT_EQ(head.Header("transfer-encoding"), "chunked");
  EXPECT_EQ(head.Header("x-request-id"), "r1");
  EXPECT_EQ(head.Header("content-length"), "");
  ASSERT_TRUE(WaitFor([&] { return streams.size() == 1; }));

  constexpr int kNumEvents = 500;
  std::thread writer([exchange = streams.Get(0)] {
    for (int i = 0; i < kNumEvents; ++i) {
      exchange->Write("data: " + std::to_string(i) + "\n\n");
      if (i % 50 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    exchange->EndStream();
  });
  std::string expected = "data: open /v1/completions\n\n";
  for (int i = 0; i < kNumEvents; ++i) expected += "data: " + std::to_string(i) + "\n\n";
  std::string received;
  for (std::string chunk = client.ReadChunk(); !chunk.empty(); chunk = client.ReadChunk()) {
    received += chunk;
  }
  writer.join();
  EXPECT_EQ(received, expected);

  // The same connection serves the next request.
  client.Send("GET /plain HTTP/1.1\r\nHost: a\r\n\r\n");
  auto next = client.ReadResponse();
  EXPECT_EQ(next.status, 200);
  EXPECT_EQ(next.body, "plain");
  EXPECT_EQ(server->num_connections(), 1);
  EXPECT_EQ(streams.num_closed.load(), 0);
}

TEST(HttpStream, WaitForResponsesReturnsOnceEveryOpenStreamHasEnded) {
  Streams streams;
  auto server = StartOrDie(TestServerOptions(), StreamingHandler(&streams));
  EXPECT_TRUE(server->WaitForResponses(std::chrono::milliseconds(0))) << "nothing in progress";
  TestClient first(server->port()), second(server->port());
  first.Send("GET /a HTTP/1.1\r\nHost: a\r\n\r\n");
  second.Send("GET /b HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_TRUE(WaitFor([&] { return streams.size() == 2; }));
  EXPECT_FALSE(server->WaitForResponses(std::chrono::milliseconds(50)));

  streams.Get(0)->Write("data: last\n\n");
  streams.Get(0)->EndStream();
  EXPECT_FALSE(server->WaitForResponses(std::chrono::milliseconds(50))) << "one stream is open";
  // A client that goes away ends its response too.
  second.Close();
  EXPECT_TRUE(server->WaitForResponses(std::chrono::seconds(5)));
  // By then the ended stream's last bytes were written in full.
  first.ReadHead();
  std::string received;
  for (std::string chunk = first.ReadChunk(); !chunk.empty(); chunk = first.ReadChunk()) {
    received += chunk;
  }
  EXPECT_EQ(received, "data: open /a\n\ndata: last\n\n");
}

TEST(HttpStream, WritesArrivingDuringAWriteAreBatchedIntoOneChunk) {
  Streams streams;
  auto server = StartOrDie(TestServerOptions(), StreamingHandler(&streams));
  TestClient client(server->port());
  client.Send("GET /batch HTTP/1.1\r\nHost: a\r\n\r\n");
  client.ReadHead();
  EXPECT_EQ(client.ReadChunk(), "data: open /batch\n\n");
  ASSERT_TRUE(WaitFor([&] { return streams.size() == 1; }));
  // All writes are queued on the strand behind the first one's completion.
  constexpr int kNumWrites = 1000;
  auto exchange = streams.Get(0);
  exchange->Post([exchange] {
    for (int i = 0; i < kNumWrites; ++i) exchange->Write("data: " + std::to_string(i) + "\n\n");
    exchange->EndStream();
  });
  auto rest = client.ReadResponseBodyChunks();
  std::string expected;
  for (int i = 0; i < kNumWrites; ++i) expected += "data: " + std::to_string(i) + "\n\n";
  std::string received;
  for (const auto& chunk : rest) received += chunk;
  EXPECT_EQ(received, expected);
  EXPECT_LE(rest.size(), 2u) << "writes were not batched";
}

TEST(HttpStream, IdleStreamGetsKeepAliveComments) {
  HttpServerOptions options = TestServerOptions();
  options.keep_alive_interval = std::chrono::milliseconds(100);
  Streams streams;
  auto server = StartOrDie(options, StreamingHandler(&streams));
  TestClient client(server->port(), std::chrono::seconds(3));
  client.Send("GET /idle HTTP/1.1\r\nHost: a\r\n\r\n");
  client.ReadHead();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(client.ReadChunk(), "data: open /idle\n\n");
  EXPECT_EQ(client.ReadChunk(), ": keep-alive\n\n");
  EXPECT_EQ(client.ReadChunk(), ": keep-alive\n\n");
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_GE(elapsed, std::chrono::milliseconds(180));
  EXPECT_LT(elapsed, std::chrono::milliseconds(1500));
  ASSERT_TRUE(WaitFor([&] { return streams.size() == 1; }));
  streams.Get(0)->Write("data: after\n\n");
  EXPECT_EQ(client.ReadChunk(), "data: after\n\n");
  streams.Get(0)->EndStream();
  EXPECT_EQ(client.ReadChunk(), "");
}

TEST(HttpStream, BusyStreamGetsNoKeepAliveComments) {
  HttpServerOptions options = TestServerOptions();
  options.keep_alive_interval = std::chrono::milliseconds(150);
  Streams streams;
  auto server = StartOrDie(options, StreamingHandler(&streams));
  TestClient client(server->port());
  client.Send("GET /busy HTTP/1.1\r\nHost: a\r\n\r\n");
  client.ReadHead();
  ASSERT_TRUE(WaitFor([&] { return streams.size() == 1; }));
  auto exchange = streams.Get(0);
  for (int i = 0; i < 20; ++i) {
    exchange->Write("data: tick\n\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  exchange->EndStream();
  auto rest = client.ReadResponseBodyChunks();
  std::string received;
  for (const auto& chunk : rest) received += chunk;
  EXPECT_EQ(received.find("keep-alive"), std::string::npos) << received;
}

TEST(HttpStream, ClientDisconnectRunsOnCloseOnceAndLaterWritesAreIgnored) {
  Streams streams;
  auto server = StartOrDie(TestServerOptions(), StreamingHandler(&streams));
  auto client = std::make_unique<TestClient>(server->port());
  client->Send("GET /gone HTTP/1.1\r\nHost: a\r\n\r\n");
  client->ReadHead();
  EXPECT_EQ(client->ReadChunk(), "data: open /gone\n\n");
  ASSERT_TRUE(WaitFor([&] { return streams.size() == 1; }));
  auto exchange = streams.Get(0);
  EXPECT_FALSE(exchange->closed());

  const auto start = std::chrono::steady_clock::now();
  client.reset();  // nothing is being written: only the pending read can notice
  ASSERT_TRUE(WaitFor([&] { return streams.num_closed.load() == 1; }, std::chrono::seconds(2)));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500));
  EXPECT_TRUE(exchange->closed());
  EXPECT_TRUE(WaitFor([&] { return server->num_connections() == 0; }));

  std::vector<std::thread> late;
  for (int t = 0; t < 4; ++t) {
    late.emplace_back([exchange] {
      for (int i = 0; i < 100; ++i) exchange->Write("data: late\n\n");
      exchange->EndStream();
      exchange->Respond(HttpResponse{});
    });
  }
  for (auto& thread : late) thread.join();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(streams.num_closed.load(), 1);
}

TEST(HttpStream, DisconnectWhileAnotherThreadWritesRunsOnCloseOnce) {
  Streams streams;
  auto server = StartOrDie(TestServerOptions(), StreamingHandler(&streams));
  constexpr int kNumRounds = 20;
  for (int round = 0; round < kNumRounds; ++round) {
    auto client = std::make_unique<TestClient>(server->port());
    client->Send("GET /busy HTTP/1.1\r\nHost: a\r\n\r\n");
    client->ReadHead();
    ASSERT_TRUE(WaitFor([&] { return streams.size() == static_cast<size_t>(round + 1); }));
    auto exchange = streams.Get(round);
    std::thread writer([exchange] {
      const std::string event = "data: " + std::string(200, 'w') + "\n\n";
      while (!exchange->closed()) {
        exchange->Write(event);
        std::this_thread::yield();
      }
      for (int i = 0; i < 100; ++i) exchange->Write(event);  // after close: ignored
    });
    try {
      // Batching may put the first events into the opening chunk.
      client->ReadUntil("data: open /busy\n\n");
      client->ReadUntil("data: www");
    } catch (const std::exception& e) {
      ADD_FAILURE() << e.what();
    }
    client.reset();  // while writes are in flight and queued
    writer.join();   // returns only once closed() became true
    EXPECT_TRUE(WaitFor([&] { return streams.num_closed.load() == round + 1; }));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(streams.num_closed.load(), kNumRounds);
  EXPECT_TRUE(WaitFor([&] { return server->num_connections() == 0; }));
}

TEST(HttpStream, OnCloseSetAfterTheDisconnectStillRuns) {
  std::mutex mutex;
  std::shared_ptr<HttpExchange> kept;
  auto server = StartOrDie(TestServerOptions(), [&](HttpRequest, std::shared_ptr<HttpExchange> ex) {
    std::lock_guard<std::mutex> lock(mutex);
    kept = ex;  // never answered
  });
  auto client = std::make_unique<TestClient>(server->port());
  client->Send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard<std::mutex> lock(mutex);
    return kept != nullptr;
  }));
  client.reset();
  std::lock_guard<std::mutex> lock(mutex);
  ASSERT_TRUE(WaitFor([&] { return kept->closed(); }));
  std::atomic<int> num_closed{0};
  kept->OnClose([&] { ++num_closed; });
  EXPECT_TRUE(WaitFor([&] { return num_closed.load() == 1; }));
}

TEST(HttpStream, OnCloseDoesNotRunForCompletedResponses) {
  Streams streams;
  auto server = StartOrDie(TestServerOptions(), StreamingHandler(&streams));
  auto client = std::make_unique<TestClient>(server->port());
  client->Send("GET /plain HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(client->ReadResponse().body, "plain");
  client->Send("GET /stream HTTP/1.1\r\nHost: a\r\n\r\n");
  client->ReadHead();
  EXPECT_EQ(client->ReadChunk(), "data: open /stream\n\n");
  ASSERT_TRUE(WaitFor([&] { return streams.size() == 1; }));
  streams.Get(0)->EndStream();
  EXPECT_EQ(client->ReadChunk(), "");
  client.reset();
  EXPECT_TRUE(WaitFor([&] { return server->num_connections() == 0; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(streams.num_closed.load(), 0);
  EXPECT_FALSE(streams.Get(0)->closed());
}

TEST(HttpStream, HandlerMayDropTheExchangeBeforeTheClientLeaves) {
  std::atomic<int> num_closed{0};
  auto server = StartOrDie(TestServerOptions(), [&](HttpRequest, std::shared_ptr<HttpExchange> ex) {
    ex->OnClose([&] { ++num_closed; });
    ex->StartStream();
    std::thread([ex = std::move(ex)] { ex->Write("data: bye\n\n"); }).detach();
  });
  auto client = std::make_unique<TestClient>(server->port());
  client->Send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  client->ReadHead();
  EXPECT_EQ(client->ReadChunk(), "data: bye\n\n");
  client.reset();
  EXPECT_TRUE(WaitFor([&] { return num_closed.load() == 1; }));
  EXPECT_TRUE(WaitFor([&] { return server->num_connections() == 0; }));
}

TEST(HttpStream, StopWithOpenStreamsRunsOnCloseAndReturns) {
  Streams streams;
  auto server = StartOrDie(TestServerOptions(), StreamingHandler(&streams));
  std::vector<std::unique_ptr<TestClient>> clients;
  for (int i = 0; i < 5; ++i) {
    clients.push_back(std::make_unique<TestClient>(server->port()));
    clients.back()->Send("GET /s" + std::to_string(i) + " HTTP/1.1\r\nHost: a\r\n\r\n");
    clients.back()->ReadHead();
    EXPECT_EQ(clients.back()->ReadChunk(), "data: open /s" + std::to_string(i) + "\n\n");
  }
  ASSERT_TRUE(WaitFor([&] { return streams.size() == 5; }));
  const auto start = std::chrono::steady_clock::now();
  server->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_EQ(streams.num_closed.load(), 5);
  EXPECT_EQ(server->num_connections(), 0);
  for (auto& client : clients) EXPECT_TRUE(client->IsEof());
  // Calls after Stop, even after the server is gone, are ignored.
  server.reset();
  for (size_t i = 0; i < 5; ++i) {
    auto exchange = streams.Get(i);
    EXPECT_TRUE(exchange->closed());
    exchange->Write("data: late\n\n");
    exchange->EndStream();
    exchange->Post([] { FAIL() << "posted after stop"; });
  }
  EXPECT_EQ(streams.num_closed.load(), 5);
}

TEST(HttpStream, Http10StreamIsUnchunkedAndEndsWithTheConnection) {
  Streams streams;
  auto server = StartOrDie(TestServerOptions(), StreamingHandler(&streams));
  TestClient client(server->port());
  client.Send("GET /old HTTP/1.0\r\n\r\n");
  auto head = client.ReadHead();
  EXPECT_EQ(head.Header("transfer-encoding"), "");
  EXPECT_EQ(head.Header("content-type"), "text/event-stream");
  ASSERT_TRUE(WaitFor([&] { return streams.size() == 1; }));
  streams.Get(0)->Write("data: x\n\n");
  streams.Get(0)->EndStream();
  EXPECT_EQ(client.ReadUntil("data: x\n\n"), "data: open /old\n\ndata: x\n\n");
  EXPECT_TRUE(client.IsEof());
  EXPECT_EQ(streams.num_closed.load(), 0);
}

}  // namespace
}  // namespace fox
