// HttpServerOptions::on_response: exactly one record per answered request,
// for the handler's answers and the transport's own (400, 413, 431, 503,
// preflight), with method, path, status, duration and how it ended.
#include <gtest/gtest.h>

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
using End = HttpResponseRecord::End;

struct Records {
  std::mutex mutex;
  std::vector<HttpResponseRecord> records;

  size_t size() {
    std::lock_guard<std::mutex> lock(mutex);
    return records.size();
  }
  HttpResponseRecord Get(size_t i) {
    std::lock_guard<std::mutex> lock(mutex);
    return records.at(i);
  }
};

HttpServerOptions RecordingOptions(Records* records) {
  HttpServerOptions options = TestServerOptions();
  options.max_request_bytes = 100;
  options.on_response = [records](const HttpResponseRecord& record) {
    std::lock_guard<std::mutex> lock(records->mutex);
    records->records.push_back(record);
  };
  return options;
}

// "/slow" answers after 50 ms from another thread, "/stream" streams one
// event and ends, "/hold" keeps the exchange without answering, anything
// else answers 201 at once.
class Handler {
 public:
  ~Handler() {
    for (auto& thread : threads_) thread.join();
  }
  HttpHandler get() {
    return [this](HttpRequest request, std::shared_ptr<HttpExchange> exchange) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (request.path == "/slow") {
        threads_.emplace_back([exchange] {
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
          exchange->Respond(HttpResponse{200, "text/plain", {}, "slow"});
        });
      } else if (request.path == "/stream") {
        exchange->StartStream();
        exchange->Write("data: x\n\n");
        exchange->EndStream();
      } else if (request.path == "/hold") {
        held_.push_back(exchange);
      } else {
        exchange->Respond(HttpResponse{201, "text/plain", {}, "made"});
      }
    };
  }

 private:
  std::mutex mutex_;
  std::vector<std::thread> threads_;
  std::vector<std::shared_ptr<HttpExchange>> held_;
};

void ExpectRecord(const HttpResponseRecord& record, const std::string& method,
                  const std::string& path, int status, End end) {
  EXPECT_EQ(record.method, method);
  EXPECT_EQ(record.path, path);
  EXPECT_EQ(record.status, status);
  EXPECT_EQ(record.end, end);
  EXPECT_GE(record.seconds, 0.0);
  EXPECT_LT(record.seconds, 5.0);
}

TEST(HttpResponseRecord, OnePerAnsweredRequestOnAKeepAliveConnection) {
  Records records;
  Handler handler;
  auto server = StartOrDie(RecordingOptions(&records), handler.get());
  TestClient client(server->port());
  client.Send("POST /made?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi");
  EXPECT_EQ(client.ReadResponse().status, 201);
  client.Send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(client.ReadResponse().body, "slow");
  client.Send("GET /stream HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(client.ReadResponse().body, "data: x\n\n");
  client.Send("HEAD /made HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(client.ReadHead().status, 201);
  ASSERT_TRUE(WaitFor([&] { return records.size() == 4; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_EQ(records.size(), 4u) << "one record each, no more";
  ExpectRecord(records.Get(0), "POST", "/made", 201, End::kComplete);
  ExpectRecord(records.Get(1), "GET", "/slow", 200, End::kComplete);
  EXPECT_GE(records.Get(1).seconds, 0.045);
  ExpectRecord(records.Get(2), "GET", "/stream", 200, End::kComplete);
  ExpectRecord(records.Get(3), "HEAD", "/made", 201, End::kComplete);
}

TEST(HttpResponseRecord, TransportRefusalsAreRecorded) {
  Records records;
  Handler handler;
  auto server = StartOrDie(RecordingOptions(&records), handler.get());
  {
    TestClient client(server->port());
    client.Send("GET / HTTP/1.1\r\nHost: a\r\nnot a header\r\n\r\n");
    EXPECT_EQ(client.ReadResponse().status, 400);
  }
  ASSERT_TRUE(WaitFor([&] { return records.size() == 1; }));
  ExpectRecord(records.Get(0), "", "", 400, End::kComplete);
  {
    TestClient client(server->port());
    client.Send("POST /v1/completions?a=b HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n");
    EXPECT_EQ(client.ReadResponse().status, 413);
  }
  ASSERT_TRUE(WaitFor([&] { return records.size() == 2; }));
  ExpectRecord(records.Get(1), "POST", "/v1/completions", 413, End::kComplete);
  {
    TestClient client(server->port());
    client.Send("GET / HTTP/1.1\r\nX: " + std::string(70 << 10, 'x') + "\r\n\r\n");
    EXPECT_EQ(client.ReadResponse().status, 431);
  }
  ASSERT_TRUE(WaitFor([&] { return records.size() == 3; }));
  ExpectRecord(records.Get(2), "", "", 431, End::kComplete);
}

TEST(HttpResponseRecord, PreflightIsRecorded) {
  Records records;
  Handler handler;
  HttpServerOptions options = RecordingOptions(&records);
  options.cors_origins = {"*"};
  auto server = StartOrDie(options, handler.get());
  TestClient client(server->port());
  client.Send(
      "OPTIONS /v1/completions HTTP/1.1\r\nHost: a\r\nOrigin: http://x\r\n"
      "Access-Control-Request-Method: POST\r\n\r\n");
  EXPECT_EQ(client.ReadResponse().status, 204);
  ASSERT_TRUE(WaitFor([&] { return records.size() == 1; }));
  ExpectRecord(records.Get(0), "OPTIONS", "/v1/completions", 204, End::kComplete);
}

TEST(HttpResponseRecord, ClientGoneBeforeAnyAnswerHasStatusZero) {
  Records records;
  Handler handler;
  auto server = StartOrDie(RecordingOptions(&records), handler.get());
  auto client = std::make_unique<TestClient>(server->port());
  client->Send("GET /hold HTTP/1.1\r\nHost: a\r\n\r\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(records.size(), 0u) << "nothing answered yet";
  client.reset();
  ASSERT_TRUE(WaitFor([&] { return records.size() == 1; }));
  ExpectRecord(records.Get(0), "GET", "/hold", 0, End::kClientGone);
}

TEST(HttpResponseRecord, ClientGoneMidStreamIsRecorded) {
  Records records;
  std::mutex mutex;
  std::shared_ptr<HttpExchange> kept;
  HttpServerOptions options = RecordingOptions(&records);
  auto server = StartOrDie(options, [&](HttpRequest, std::shared_ptr<HttpExchange> exchange) {
    exchange->StartStream();
    exchange->Write("data: first\n\n");
    std::lock_guard<std::mutex> lock(mutex);
    kept = exchange;
  });
  auto client = std::make_unique<TestClient>(server->port());
  client->Send("POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
  client->ReadHead();
  EXPECT_EQ(client->ReadChunk(), "data: first\n\n");
  client.reset();
  ASSERT_TRUE(WaitFor([&] { return records.size() == 1; }));
  ExpectRecord(records.Get(0), "POST", "/v1/chat/completions", 200, End::kClientGone);
}

}  // namespace
}  // namespace fox
