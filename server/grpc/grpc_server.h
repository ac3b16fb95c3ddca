// The gRPC front end: the foxserve.v1.Foxserve service on gRPC's callback
// API (Generate as one ServerWriteReactor per call, which streams the engine's
// events and aborts the engine request when the client cancels or its
// deadline passes; Tokenize and ModelInfo as unary reactors), plus the
// standard grpc.health.v1 Health service. The API key, when the context has
// one, is required as `authorization: Bearer <key>` metadata on every
// foxserve call (UNAUTHENTICATED otherwise).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/serving_context.h"

namespace fox {

class GrpcServer {
 public:
  // Listens on host:port (port 0: any free port) and serves on gRPC's own
  // threads. `context` must outlive the server. Unavailable when the address
  // cannot be bound.
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(ServingContext* context,
                                                           const std::string& host, int port);
  virtual ~GrpcServer() = default;

  virtual int port() const = 0;
  // Health: SERVING or NOT_SERVING for both "" and "foxserve.v1.Foxserve".
  virtual void SetServing(bool serving) = 0;
  // Cancels every call still running (their engine requests are aborted) and
  // stops, waiting up to `grace` for calls to end on their own. Idempotent.
  virtual void Stop(std::chrono::milliseconds grace) = 0;
};

}  // namespace fox
