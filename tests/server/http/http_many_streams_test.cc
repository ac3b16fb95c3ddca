// Scale: one HttpServer on two threads holds 1000 event streams open at once,
// each client receiving its own events. The clients are asio sockets on one
// thread of the test, so neither side spends a thread per connection.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "server/http/http_server.h"
#include "tests/server/http/http_test_client.h"

namespace fox {
namespace {
namespace asio = boost::asio;
using asio::ip::tcp;

constexpr int kNumStreams = 1000;

// The body of a chunked response, or "<bad framing>" when it is not one.
std::string DecodeChunked(const std::string& response) {
  size_t pos = response.find("\r\n\r\n");
  if (pos == std::string::npos) return "<bad framing>";
  pos += 4;
  std::string body;
  while (true) {
    const size_t line_end = response.find("\r\n", pos);
    if (line_end == std::string::npos) return "<bad framing>";
    const size_t size = std::stoul(response.substr(pos, line_end - pos), nullptr, 16);
    pos = line_end + 2;
    if (size == 0)
      return response.compare(pos, std::string::npos, "\r\n") == 0 ? body : "<bad framing>";
    if (response.compare(pos + size, 2, "\r\n") != 0) return "<bad framing>";
    body += response.substr(pos, size);
    pos += size + 2;
  }
}

struct ClientStream {
  explicit ClientStream(asio::io_context& io) : socket(io) {}
  tcp::socket socket;
  std::string request;
  std::string received;
  boost::system::error_code error;
};

TEST(HttpManyStreams, ThousandConcurrentStreamsOnTwoThreads) {
  rlimit limit{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  if (limit.rlim_cur < 4 * kNumStreams) {
    limit.rlim_cur = std::min<rlim_t>(limit.rlim_max, 4 * kNumStreams);
    setrlimit(RLIMIT_NOFILE, &limit);
  }
  ASSERT_GE(limit.rlim_cur, 2 * kNumStreams + 64u) << "not enough file descriptors";

  std::mutex mutex;
  std::vector<std::shared_ptr<HttpExchange>> exchanges(kNumStreams);
  std::atomic<int> num_opened{0};
  std::atomic<int> num_closed{0};
  HttpServerOptions options;
  options.port = 0;
  options.num_threads = 2;
  auto started = HttpServer::Start(options, [&](HttpRequest request, auto exchange) {
    const int index = std::stoi(request.path.substr(3));  // "/s/<index>"
    exchange->OnClose([&] { ++num_closed; });
    exchange->StartStream();
    exchange->Write("data: open " + std::to_string(index) + "\n\n");
    std::lock_guard<std::mutex> lock(mutex);
    exchanges[index] = std::move(exchange);
    ++num_opened;
  });
  ASSERT_TRUE(started.ok()) << started.status();
  auto server = std::move(started).value();
  const auto start = std::chrono::steady_clock::now();

  asio::io_context client_io;
  const tcp::endpoint endpoint(asio::ip::address_v4::loopback(), server->port());
  std::vector<std::unique_ptr<ClientStream>> clients;
  std::atomic<int> num_first_events{0};
  std::atomic<int> num_finished{0};
  for (int i = 0; i < kNumStreams; ++i) {
    clients.push_back(std::make_unique<ClientStream>(client_io));
    ClientStream* c = clients.back().get();
    c->request = "GET /s/" + std::to_string(i) + " HTTP/1.1\r\nHost: a\r\n\r\n";
    c->socket.async_connect(endpoint, [c, i, &num_first_events, &num_finished](auto ec) {
      if (ec) return void(c->error = ec);
      asio::async_write(c->socket, asio::buffer(c->request),
                        [c, i, &num_first_events, &num_finished](auto ec, size_t) {
                          if (ec) return void(c->error = ec);
                          const std::string first = "data: open " + std::to_string(i) + "\n\n";
                          asio::async_read_until(
                              c->socket, asio::dynamic_buffer(c->received), first,
                              [c, &num_first_events, &num_finished](auto ec, size_t) {
                                if (ec) return void(c->error = ec);
                                ++num_first_events;
                                asio::async_read_until(c->socket, asio::dynamic_buffer(c->received),
                                                       "0\r\n\r\n",
                                                       [c, &num_finished](auto ec, size_t) {
                                                         if (ec) c->error = ec;
                                                         ++num_finished;
                                                       });
                              });
                        });
    });
  }
  std::thread client_thread([&] { client_io.run(); });

  // Every stream is open at the same time, each with its first event.
  EXPECT_TRUE(http_test::WaitFor([&] { return num_first_events.load() == kNumStreams; },
                                 std::chrono::seconds(15)))
      << num_first_events.load() << " streams got their first event";
  EXPECT_EQ(num_opened.load(), kNumStreams);
  EXPECT_EQ(server->num_connections(), kNumStreams);

  // Then each gets a second event from writer threads, and ends.
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&, w] {
      for (int i = w; i < kNumStreams; i += 2) {
        std::shared_ptr<HttpExchange> exchange;
        {
          std::lock_guard<std::mutex> lock(mutex);
          exchange = exchanges[i];
        }
        if (!exchange) continue;
        exchange->Write("data: second " + std::to_string(i) + "\n\n");
        exchange->EndStream();
      }
    });
  }
  for (auto& writer : writers) writer.join();
  EXPECT_TRUE(http_test::WaitFor([&] { return num_finished.load() == kNumStreams; },
                                 std::chrono::seconds(15)));
  client_io.stop();
  client_thread.join();

  int num_correct = 0;
  for (int i = 0; i < kNumStreams; ++i) {
    const std::string expected =
        "data: open " + std::to_string(i) + "\n\ndata: second " + std::to_string(i) + "\n\n";
    if (!clients[i]->error && DecodeChunked(clients[i]->received) == expected) {
      ++num_correct;
    } else if (i - num_correct < 5) {  // the first few failures are enough
      ADD_FAILURE() << "stream " << i << ": " << clients[i]->error.message() << " "
                    << clients[i]->received;
    }
  }
  EXPECT_EQ(num_correct, kNumStreams);
  EXPECT_EQ(num_closed.load(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
  clients.clear();
  server->Stop();
}

}  // namespace
}  // namespace fox
