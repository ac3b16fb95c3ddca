// HttpServer: binds, accepts connections into HttpSessions (serving up to
// --max-connections, refusing the rest with 503), runs the io_context on a
// fixed pool of threads, and stops them all.
#include "server/http/http_server.h"

#include <sys/resource.h>

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <exception>
#include <mutex>
#include <thread>

#include "absl/status/status.h"
#include "server/http/http_context.h"
#include "server/http/http_session.h"
#include "server/http/http_tls.h"

namespace fox {
namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

// After an accept error other than shutdown (e.g. out of descriptors: the
// connection stays queued in the backlog), wait before trying again rather
// than spinning.
constexpr std::chrono::milliseconds kAcceptRetryDelay{50};
constexpr std::chrono::seconds kAcceptLogInterval{10};

// max_connections 0: what the open-file limit leaves after the reserve.
int ResolveMaxConnections(int max_connections) {
  if (max_connections > 0) return max_connections;
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return 1 << 20;
  const rlim_t reserve = HttpServerOptions::kReservedFileDescriptors;
  return static_cast<int>(std::clamp<rlim_t>(
      limit.rlim_cur > reserve ? limit.rlim_cur - reserve : 1, 1, rlim_t{1} << 20));
}
// How long Stop() lets closing connections run their on-close callbacks
// before it abandons the queued work.
constexpr std::chrono::seconds kStopDrainTimeout{10};

class HttpServerImpl : public HttpServer {
 public:
  explicit HttpServerImpl(std::shared_ptr<HttpContext> context)
      : context_(std::move(context)),
        acceptor_(asio::make_strand(context_->io_context())),
        retry_timer_(acceptor_.get_executor()),
        work_guard_(context_->io_context().get_executor()) {}

  ~HttpServerImpl() override { Stop(); }

  absl::Status Listen() {
    const HttpServerOptions& options = context_->options();
    const std::string address = options.host + ":" + std::to_string(options.port);
    error_code ec;
    tcp::resolver resolver(context_->io_context());
    const auto endpoints =
        resolver.resolve(options.host, std::to_string(options.port), tcp::resolver::passive, ec);
    if (ec || endpoints.empty()) {
      return absl::UnavailableError("cannot resolve " + address + ": " + ec.message());
    }
    const tcp::endpoint endpoint = endpoints.begin()->endpoint();
    if (!acceptor_.open(endpoint.protocol(), ec) &&
        !acceptor_.set_option(asio::socket_base::reuse_address(true), ec) &&
        !acceptor_.bind(endpoint, ec) &&
        !acceptor_.listen(asio::socket_base::max_listen_connections, ec)) {
      port_ = acceptor_.local_endpoint().port();
      return absl::OkStatus();
    }
    return absl::UnavailableError("cannot listen on " + address + ": " + ec.message());
  }

  void Run() {
    Accept();
    for (int i = 0; i < std::max(1, context_->options().num_threads); ++i) {
      threads_.emplace_back([this] { RunLoop(); });
    }
  }

  int port() const override { return port_; }
  int64_t num_connections() const override { return context_->num_connections(); }

  bool WaitForResponses(std::chrono::milliseconds timeout) override {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (context_->num_open_responses() > 0) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
  }

  // Joins the I/O threads, so it must not be called from one of them (a
  // handler or an on-close callback).
  void Stop() override {
    std::lock_guard<std::mutex> lock(stop_mutex_);
    if (is_stopped_) return;
    is_stopped_ = true;
    asio::post(acceptor_.get_executor(), [this] {
      error_code ignored;
      acceptor_.close(ignored);
      retry_timer_.cancel();
    });
    for (const auto& session : context_->BeginStop()) session->Close();
    work_guard_.reset();
    // The threads return once every connection has closed and its on-close
    // callback has run; a callback that never returns must not hang Stop.
    const auto deadline = std::chrono::steady_clock::now() + kStopDrainTimeout;
    while (context_->num_connections() > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (context_->num_connections() > 0) context_->io_context().stop();
    for (auto& thread : threads_) thread.join();
    threads_.clear();
  }

 private:
  // The sessions catch what client bytes can make throw; this is the last
  // guard, so that nothing a handler throws on an I/O thread ends the
  // process (the operation that threw is abandoned, its connection dropped).
  void RunLoop() {
    for (;;) {
      try {
        context_->io_context().run();
        return;
      } catch (const std::exception& e) {
        context_->Log("an I/O handler threw; its connection is dropped", {{"error", e.what()}});
      } catch (...) {
        context_->Log("an I/O handler threw; its connection is dropped", {{"error", "unknown"}});
      }
    }
  }

  void Accept() {
    acceptor_.async_accept(
        asio::make_strand(context_->io_context()),
        [this](error_code ec, tcp::socket socket) { OnAccept(ec, std::move(socket)); });
  }

  void OnAccept(error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      // Logged when a run of failures begins, at most every kAcceptLogInterval:
      // near the descriptor limit, runs may begin and end many times a second.
      const auto now = std::chrono::steady_clock::now();
      if (!is_accept_failing_ && now - last_accept_log_ >= kAcceptLogInterval) {
        last_accept_log_ = now;
        context_->Log("accepting connections failed; retrying",
                      {{"error", ec.message()},
                       {"retry_every", std::to_string(kAcceptRetryDelay.count()) + " ms"},
                       {"connections", std::to_string(context_->num_connections())}});
      }
      is_accept_failing_ = true;
      retry_timer_.expires_after(kAcceptRetryDelay);
      retry_timer_.async_wait([this](error_code ec) {
        if (!ec && acceptor_.is_open()) Accept();
      });
      return;
    }
    // Event streams are many small writes that must not wait for Nagle.
    is_accept_failing_ = false;
    socket.set_option(tcp::no_delay(true), ec);
    // Registered before it starts, so the limit counts it from now on.
    auto session = std::make_shared<HttpSession>(context_, std::move(socket));
    switch (context_->Register(session.get(), session)) {
      case HttpContext::Admission::kServe:
        session->Start();
        break;
      case HttpContext::Admission::kRefuse:
        session->Refuse();
        session->Start();
        break;
      case HttpContext::Admission::kStopped:
        break;
    }
    Accept();
  }

  const std::shared_ptr<HttpContext> context_;
  tcp::acceptor acceptor_;
  asio::steady_timer retry_timer_;
  asio::executor_work_guard<asio::io_context::executor_type> work_guard_;
  std::vector<std::thread> threads_;
  int port_ = 0;
  std::mutex stop_mutex_;
  bool is_stopped_ = false;
  // Acceptor strand only.
  bool is_accept_failing_ = false;
  std::chrono::steady_clock::time_point last_accept_log_{};
};

}  // namespace

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                              HttpHandler handler) {
  std::unique_ptr<boost::asio::ssl::context> tls;
  if (options.tls.enabled()) {
    absl::StatusOr<std::unique_ptr<boost::asio::ssl::context>> made =
        MakeTlsServerContext(options.tls);
    if (!made.ok()) return made.status();
    tls = std::move(*made);
  }
  HttpServerOptions resolved = options;
  resolved.max_connections = ResolveMaxConnections(options.max_connections);
  auto server = std::make_unique<HttpServerImpl>(
      std::make_shared<HttpContext>(std::move(resolved), std::move(handler), std::move(tls)));
  if (absl::Status status = server->Listen(); !status.ok()) return status;
  server->Run();
  return server;
}

}  // namespace fox
