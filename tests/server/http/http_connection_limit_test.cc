// Connection limits: past max_connections a new connection is answered 503
// with Retry-After and closed, while the served ones go on; and when accept()
// fails for lack of file descriptors (EMFILE) the server neither spins nor
// dies, and serves again once descriptors free up.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
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

HttpHandler Ok() {
  return [](HttpRequest request, std::shared_ptr<HttpExchange> exchange) {
    exchange->Respond(HttpResponse{200, "text/plain", {}, "ok " + request.path});
  };
}

std::string Get(TestClient& client, const std::string& path) {
  client.Send("GET " + path + " HTTP/1.1\r\nHost: a\r\n\r\n");
  return client.ReadResponse().body;
}

TEST(HttpConnectionLimit, ConnectionPastTheLimitGets503WithRetryAfterAndIsClosed) {
  HttpServerOptions options = TestServerOptions();
  options.max_connections = 2;
  std::atomic<int> num_503{0};
  options.on_response = [&](const HttpResponseRecord& record) { num_503 += record.status == 503; };
  auto server = StartOrDie(options, Ok());
  auto first = std::make_unique<TestClient>(server->port());
  TestClient second(server->port());
  EXPECT_EQ(Get(*first, "/1"), "ok /1");
  EXPECT_EQ(Get(second, "/2"), "ok /2");

  TestClient third(server->port());
  third.Send("GET /3 HTTP/1.1\r\nHost: a\r\n\r\n");
  const auto refused = third.ReadResponse();
  EXPECT_EQ(refused.status, 503);
  EXPECT_EQ(refused.Header("retry-after"), "1");
  EXPECT_EQ(refused.Header("connection"), "close");
  EXPECT_EQ(refused.body, "the server is at its --max-connections limit of 2 connections\n");
  EXPECT_TRUE(third.IsEof());
  EXPECT_EQ(num_503.load(), 1);
  third.Close();

  // The served connections are untouched, and a freed slot serves again.
  EXPECT_EQ(Get(second, "/2again"), "ok /2again");
  first.reset();
  ASSERT_TRUE(WaitFor([&] { return server->num_connections() == 1; }));
  TestClient fourth(server->port());
  EXPECT_EQ(Get(fourth, "/4"), "ok /4");
}

// max_connections 0: RLIMIT_NOFILE less the reserve, read at Start. A child
// process lowers its limit to the reserve plus 3 first.
TEST(HttpConnectionLimit, DefaultLimitIsTheOpenFileLimitLessTheReserve) {
  int port_pipe[2];
  ASSERT_EQ(pipe(port_pipe), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    rlimit limit{};
    getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = HttpServerOptions::kReservedFileDescriptors + 3;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) _exit(4);
    auto server = HttpServer::Start(TestServerOptions(), Ok());
    if (!server.ok()) _exit(3);
    const int port = (*server)->port();
    (void)!write(port_pipe[1], &port, sizeof(port));
    while (true) pause();
  }
  close(port_pipe[1]);
  int port = 0;
  ASSERT_EQ(read(port_pipe[0], &port, sizeof(port)), static_cast<ssize_t>(sizeof(port)));
  close(port_pipe[0]);
  std::vector<std::unique_ptr<TestClient>> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(std::make_unique<TestClient>(port));
    EXPECT_EQ(Get(*clients.back(), "/" + std::to_string(i)), "ok /" + std::to_string(i));
  }
  TestClient refused(port);
  EXPECT_EQ(Get(refused, "/3"), "the server is at its --max-connections limit of 3 connections\n");
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
}

int NumOpenFileDescriptors() {
  int count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    ++count;
  }
  return count;
}

// utime + stime of `pid`, in clock ticks.
long CpuTicks(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string content((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // Fields after the command name, which is in parentheses and may hold spaces.
  std::istringstream rest(content.substr(content.rfind(')') + 2));
  std::string field;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stol(field);
    if (i == 15) stime = std::stol(field);
  }
  return utime + stime;
}

// A child process serves with an open-file limit a few descriptors above
// what it uses, so accepting the parent's connections soon fails with EMFILE.
TEST(HttpConnectionLimit, AcceptFailingWithEmfileNeitherSpinsNorDies) {
  int port_pipe[2], log_pipe[2];
  ASSERT_EQ(pipe(port_pipe), 0);
  ASSERT_EQ(pipe(log_pipe), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(port_pipe[0]);
    close(log_pipe[0]);
    signal(SIGPIPE, SIG_IGN);  // the parent stops reading the log early
    HttpServerOptions options = TestServerOptions();
    options.max_connections = 1000;  // the descriptors run out first
    const int log_fd = log_pipe[1];
    options.log = [log_fd](const std::string& message,
                           const std::vector<std::pair<std::string, std::string>>& fields) {
      std::string line = message;
      for (const auto& [key, value] : fields) line += " " + key + "=" + value;
      line += "\n";
      (void)!write(log_fd, line.data(), line.size());
    };
    auto server = HttpServer::Start(options, Ok());
    if (!server.ok()) _exit(3);
    rlimit limit{};
    getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = NumOpenFileDescriptors() + 3;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) _exit(4);
    const int port = (*server)->port();
    (void)!write(port_pipe[1], &port, sizeof(port));
    while (true) pause();
  }
  close(port_pipe[1]);
  close(log_pipe[1]);
  int port = 0;
  ASSERT_EQ(read(port_pipe[0], &port, sizeof(port)), static_cast<ssize_t>(sizeof(port)));
  close(port_pipe[0]);

  // More connections than the child has descriptors for; the kernel
  // completes them all, the child accepts what it can.
  std::vector<std::unique_ptr<TestClient>> clients;
  for (int i = 0; i < 12; ++i) {
    clients.push_back(std::make_unique<TestClient>(port, std::chrono::seconds(5)));
    clients.back()->Send("GET /" + std::to_string(i) + " HTTP/1.1\r\nHost: a\r\n\r\n");
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const long ticks_before = CpuTicks(child);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const long ticks_spent = CpuTicks(child) - ticks_before;
  EXPECT_LT(ticks_spent, sysconf(_SC_CLK_TCK) / 5) << "the child spins on accept";
  int status = 0;
  EXPECT_EQ(waitpid(child, &status, WNOHANG), 0) << "the child died";

  // It said why it stalls (read before any descriptor is freed, so this
  // shows the limit was reached).
  pollfd log_ready{log_pipe[0], POLLIN, 0};
  ASSERT_EQ(poll(&log_ready, 1, 2000), 1) << "nothing logged";
  char logged[4096] = {};
  ASSERT_GT(read(log_pipe[0], logged, sizeof(logged) - 1), 0);
  close(log_pipe[0]);
  EXPECT_NE(std::string(logged).find("accepting connections failed; retrying error=Too many "
                                     "open files retry_every=50 ms"),
            std::string::npos)
      << logged;

  // Each client closed frees a descriptor, and a waiting one is accepted and
  // served: every request is answered in the end.
  int num_served = 0;
  for (auto& client : clients) {
    try {
      num_served += client->ReadResponse().status == 200;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "client " << (&client - &clients[0]) << ": " << e.what();
    }
    client.reset();
  }
  EXPECT_EQ(num_served, 12);
  kill(child, SIGKILL);
  waitpid(child, &status, 0);
}

}  // namespace
}  // namespace fox
