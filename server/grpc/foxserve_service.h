// The foxserve.v1.Foxserve service on gRPC's callback API: checks the API key,
// then hands Generate to a GenerateReactor and answers Tokenize and
// ModelInfo inline (they do not wait on the engine).
#pragma once

#include "foxserve/v1/foxserve.grpc.pb.h"
#include "server/serving_context.h"

namespace fox {

class FoxserveService final : public foxserve::v1::Foxserve::CallbackService {
 public:
  // `context` must outlive the service.
  explicit FoxserveService(ServingContext* context) : context_(context) {}

  grpc::ServerWriteReactor<foxserve::v1::GenerateResponse>* Generate(
      grpc::CallbackServerContext* call, const foxserve::v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* call,
                                     const foxserve::v1::TokenizeRequest* request,
                                     foxserve::v1::TokenizeResponse* response) override;
  grpc::ServerUnaryReactor* ModelInfo(grpc::CallbackServerContext* call,
                                      const foxserve::v1::ModelInfoRequest* request,
                                      foxserve::v1::ModelInfoResponse* response) override;

 private:
  // OK, or UNAUTHENTICATED when the call lacks the key the context requires.
  grpc::Status CheckApiKey(const grpc::CallbackServerContext& call) const;

  ServingContext* const context_;
};

}  // namespace fox
