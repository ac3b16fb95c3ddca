#include "server/grpc/grpc_server.h"

#include <mutex>

#include "absl/strings/str_cat.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "server/grpc/foxserve_service.h"

namespace fox {
namespace {

constexpr char kServiceName[] = "foxserve.v1.Foxserve";

// "host:port", with an IPv6 literal in brackets.
std::string Address(const std::string& host, int port) {
  const bool bracket = host.find(':') != std::string::npos && host.front() != '[';
  return bracket ? absl::StrCat("[", host, "]:", port) : absl::StrCat(host, ":", port);
}

class GrpcServerImpl final : public GrpcServer {
 public:
  GrpcServerImpl(std::unique_ptr<FoxserveService> service, std::unique_ptr<grpc::Server> server,
                 int port)
      : service_(std::move(service)), server_(std::move(server)), port_(port) {}
  ~GrpcServerImpl() override { Stop(std::chrono::milliseconds(0)); }

  int port() const override { return port_; }

  void SetServing(bool serving) override {
    grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
    health->SetServingStatus("", serving);
    health->SetServingStatus(kServiceName, serving);
  }

  void Stop(std::chrono::milliseconds grace) override {
    std::lock_guard<std::mutex> lock(stop_mu_);
    if (stopped_) return;
    stopped_ = true;
    // Calls still running at the deadline are cancelled; their reactors'
    // OnCancel aborts the engine requests. Shutdown returns once all are done.
    server_->Shutdown(std::chrono::system_clock::now() + grace);
    server_->Wait();
  }

 private:
  std::unique_ptr<FoxserveService> service_;  // outlives server_
  std::unique_ptr<grpc::Server> server_;
  const int port_;
  std::mutex stop_mu_;
  bool stopped_ = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(ServingContext* context,
                                                              const std::string& host, int port) {
  // Both are process-wide settings read when a server is built.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  auto service = std::make_unique<FoxserveService>(context);
  const std::string address = Address(host, port);
  int selected_port = 0;
  grpc::ServerBuilder builder;
  // Without this gRPC binds with SO_REUSEPORT, and a port in use would not be an error.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &selected_port);
  builder.RegisterService(service.get());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || selected_port == 0) {
    return absl::UnavailableError(absl::StrCat("gRPC: cannot listen on ", address));
  }
  auto grpc_server =
      std::make_unique<GrpcServerImpl>(std::move(service), std::move(server), selected_port);
  grpc_server->SetServing(true);
  return grpc_server;
}

}  // namespace fox
