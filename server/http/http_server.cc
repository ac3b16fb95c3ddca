// HttpServer: binds, accepts connections into HttpSessions, runs the
// io_context on a fixed pool of threads, and stops them all.
#include "server/http/http_server.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <mutex>
#include <thread>

#include "absl/status/status.h"
#include "server/http/http_context.h"
#include "server/http/http_session.h"

namespace fox {
namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

// After an accept error other than shutdown (e.g. out of descriptors), wait
// before trying again rather than spinning.
constexpr std::chrono::milliseconds kAcceptRetryDelay{50};
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
      threads_.emplace_back([this] { context_->io_context().run(); });
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
  void Accept() {
    acceptor_.async_accept(
        asio::make_strand(context_->io_context()),
        [this](error_code ec, tcp::socket socket) { OnAccept(ec, std::move(socket)); });
  }

  void OnAccept(error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      retry_timer_.expires_after(kAcceptRetryDelay);
      retry_timer_.async_wait([this](error_code ec) {
        if (!ec && acceptor_.is_open()) Accept();
      });
      return;
    }
    // Event streams are many small writes that must not wait for Nagle.
    socket.set_option(tcp::no_delay(true), ec);
    auto session = std::make_shared<HttpSession>(context_, std::move(socket));
    if (context_->Register(session.get(), session)) session->Start();
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
};

}  // namespace

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                              HttpHandler handler) {
  auto server =
      std::make_unique<HttpServerImpl>(std::make_shared<HttpContext>(options, std::move(handler)));
  if (absl::Status status = server->Listen(); !status.ok()) return status;
  server->Run();
  return server;
}

}  // namespace fox
