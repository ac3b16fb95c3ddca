// Clients that stop reading: a stream whose client takes no byte for the
// write timeout, or lets more than max_unsent_bytes pile up, is dropped: the
// connection closes, the exchange's on-close callback runs (the OpenAI layer
// aborts the engine request there), on_response reports kWriteTimeout, and
// the reason is logged. Another stream on the same server keeps flowing.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>
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
using std::chrono::milliseconds;

// What the server reported: records, log lines, on-close runs per path.
struct Observed {
  std::mutex mutex;
  std::vector<HttpResponseRecord> records;
  std::vector<std::string> logs;
  std::vector<std::string> closed_paths;

  std::optional<HttpResponseRecord> RecordFor(const std::string& path) {
    std::lock_guard<std::mutex> lock(mutex);
    for (const auto& record : records) {
      if (record.path == path) return record;
    }
    return std::nullopt;
  }
  bool IsClosed(const std::string& path) {
    std::lock_guard<std::mutex> lock(mutex);
    return std::find(closed_paths.begin(), closed_paths.end(), path) != closed_paths.end();
  }
  std::string Logs() {
    std::lock_guard<std::mutex> lock(mutex);
    std::string all;
    for (const auto& line : logs) all += line + "\n";
    return all;
  }
};

HttpServerOptions ObservedOptions(Observed* observed) {
  HttpServerOptions options = TestServerOptions();
  options.on_response = [observed](const HttpResponseRecord& record) {
    std::lock_guard<std::mutex> lock(observed->mutex);
    observed->records.push_back(record);
  };
  options.log = [observed](const std::string& message,
                           const std::vector<std::pair<std::string, std::string>>& fields) {
    std::string line = message;
    for (const auto& [key, value] : fields) line += " " + key + "=" + value;
    std::lock_guard<std::mutex> lock(observed->mutex);
    observed->logs.push_back(line);
  };
  return options;
}

// Streams until the client goes: "/flood" writes 4 KiB events as fast as it
// may, "/tick" one small event every 10 ms. Each writer is a thread of its
// own, as the engine's notifications would be.
class StreamingHandler {
 public:
  explicit StreamingHandler(Observed* observed) : observed_(observed) {}
  ~StreamingHandler() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& writer : writers_) writer.join();
  }

  HttpHandler handler() {
    return [this](HttpRequest request, std::shared_ptr<HttpExchange> exchange) {
      exchange->OnClose([this, path = request.path] {
        std::lock_guard<std::mutex> lock(observed_->mutex);
        observed_->closed_paths.push_back(path);
      });
      exchange->StartStream();
      const bool flood = request.path == "/flood";
      std::lock_guard<std::mutex> lock(mutex_);
      writers_.emplace_back([exchange, flood, this] {
        const std::string event =
            flood ? "data: " + std::string(4090, 'f') + "\n\n" : "data: tick\n\n";
        for (int i = 0; !exchange->closed() && !stop_; ++i) {
          exchange->Write(event);
          if (!flood || i % 16 == 0) std::this_thread::sleep_for(milliseconds(flood ? 1 : 10));
        }
        exchange->EndStream();
      });
    };
  }
  void Stop() { stop_ = true; }

 private:
  Observed* observed_;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::vector<std::thread> writers_;
};

// Reads the tick stream for `duration`; returns how many ticks arrived.
int ReadTicks(TestClient& client, milliseconds duration) {
  const auto end = std::chrono::steady_clock::now() + duration;
  int num_ticks = 0;
  while (std::chrono::steady_clock::now() < end) {
    client.ReadUntil("data: tick\n\n");
    ++num_ticks;
  }
  return num_ticks;
}

TEST(HttpSlowReader, StreamToAClientThatReadsNothingEndsAtTheWriteTimeout) {
  Observed observed;
  HttpServerOptions options = ObservedOptions(&observed);
  options.write_timeout = milliseconds(500);
  options.max_unsent_bytes = 256 << 20;  // only the timeout can end it
  StreamingHandler streams(&observed);
  auto server = StartOrDie(options, streams.handler());

  TestClient fast(server->port());
  fast.Send("GET /tick HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(fast.ReadHead().status, 200);

  TestClient stalled(server->port(), std::chrono::seconds(10), /*receive_buffer_bytes=*/4096);
  const auto start = std::chrono::steady_clock::now();
  stalled.Send("GET /flood HTTP/1.1\r\nHost: a\r\n\r\n");
  // The other stream flows all along, and goes on after the drop.
  while (!observed.IsClosed("/flood") &&
         std::chrono::steady_clock::now() - start < std::chrono::seconds(20)) {
    ReadTicks(fast, milliseconds(50));
  }
  ASSERT_TRUE(observed.IsClosed("/flood"));
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(500));
  EXPECT_GE(ReadTicks(fast, milliseconds(300)), 10);
  EXPECT_FALSE(observed.IsClosed("/tick"));

  ASSERT_TRUE(WaitFor([&] { return observed.RecordFor("/flood").has_value(); }));
  const HttpResponseRecord record = *observed.RecordFor("/flood");
  EXPECT_EQ(record.end, HttpResponseRecord::End::kWriteTimeout);
  EXPECT_EQ(record.method, "GET");
  EXPECT_EQ(record.status, 200);
  EXPECT_GE(record.seconds, 0.5);
  const std::string logs = observed.Logs();
  EXPECT_NE(logs.find("dropped a client that does not read its response reason=the client took "
                      "no byte of the response for 500 ms (--write-timeout)"),
            std::string::npos)
      << logs;
  EXPECT_NE(logs.find("path=/flood"), std::string::npos) << logs;
  EXPECT_EQ(server->num_connections(), 1);  // the fast one

  streams.Stop();
  fast.ReadUntil("\r\n0\r\n\r\n");  // the last chunk (the ticks were read unframed)
  ASSERT_TRUE(WaitFor([&] { return observed.RecordFor("/tick").has_value(); }));
  EXPECT_EQ(observed.RecordFor("/tick")->end, HttpResponseRecord::End::kComplete);
}

TEST(HttpSlowReader, StreamWhoseUnsentBytesPassTheCapIsDroppedBeforeTheTimeout) {
  Observed observed;
  HttpServerOptions options = ObservedOptions(&observed);
  options.write_timeout = std::chrono::seconds(60);
  options.max_unsent_bytes = 256 << 10;
  StreamingHandler streams(&observed);
  auto server = StartOrDie(options, streams.handler());
  TestClient stalled(server->port(), std::chrono::seconds(10), /*receive_buffer_bytes=*/4096);
  stalled.Send("GET /flood HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_TRUE(WaitFor([&] { return observed.IsClosed("/flood"); }, std::chrono::seconds(20)));
  ASSERT_TRUE(WaitFor([&] { return observed.RecordFor("/flood").has_value(); }));
  EXPECT_EQ(observed.RecordFor("/flood")->end, HttpResponseRecord::End::kWriteTimeout);
  const std::string logs = observed.Logs();
  EXPECT_NE(logs.find("bytes of the stream, over the limit of 262144"), std::string::npos) << logs;
  EXPECT_TRUE(WaitFor([&] { return server->num_connections() == 0; }));
  streams.Stop();
}

// A complete response (not a stream) to a client that never reads is
// bounded by the write timeout too.
TEST(HttpSlowReader, LargeResponseToAClientThatReadsNothingEndsAtTheWriteTimeout) {
  Observed observed;
  HttpServerOptions options = ObservedOptions(&observed);
  options.write_timeout = milliseconds(300);
  std::atomic<int> num_closed{0};
  auto server = StartOrDie(options, [&](HttpRequest, std::shared_ptr<HttpExchange> exchange) {
    exchange->OnClose([&] { ++num_closed; });
    exchange->Respond(HttpResponse{200, "text/plain", {}, std::string(64 << 20, 'b')});
  });
  TestClient stalled(server->port(), std::chrono::seconds(10), /*receive_buffer_bytes=*/4096);
  stalled.Send("GET /big HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_TRUE(WaitFor([&] { return num_closed.load() == 1; }, std::chrono::seconds(20)));
  ASSERT_TRUE(WaitFor([&] { return observed.RecordFor("/big").has_value(); }));
  EXPECT_EQ(observed.RecordFor("/big")->end, HttpResponseRecord::End::kWriteTimeout);
  EXPECT_EQ(observed.RecordFor("/big")->status, 200);
}

}  // namespace
}  // namespace fox
