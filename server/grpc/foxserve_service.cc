#include "server/grpc/foxserve_service.h"

#include <string>

#include "server/grpc/generate_reactor.h"
#include "server/grpc/proto_convert.h"

namespace fox {
namespace {

// A call refused before it starts: finishes with `status` at once.
class RefusedWrite final : public grpc::ServerWriteReactor<foxserve::v1::GenerateResponse> {
 public:
  explicit RefusedWrite(grpc::Status status) { Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

grpc::ServerUnaryReactor* FinishUnary(grpc::CallbackServerContext* call, grpc::Status status) {
  grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
  reactor->Finish(std::move(status));
  return reactor;
}

}  // namespace

grpc::Status FoxserveService::CheckApiKey(const grpc::CallbackServerContext& call) const {
  if (!context_->requires_api_key()) return grpc::Status::OK;
  const auto& metadata = call.client_metadata();
  const auto it = metadata.find("authorization");
  if (it != metadata.end() &&
      context_->IsAuthorized(std::string(it->second.data(), it->second.size()))) {
    return grpc::Status::OK;
  }
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "missing or invalid API key");
}

grpc::ServerWriteReactor<foxserve::v1::GenerateResponse>* FoxserveService::Generate(
    grpc::CallbackServerContext* call, const foxserve::v1::GenerateRequest* request) {
  if (grpc::Status auth = CheckApiKey(*call); !auth.ok()) return new RefusedWrite(auth);
  return new GenerateReactor(context_, *request);
}

grpc::ServerUnaryReactor* FoxserveService::Tokenize(grpc::CallbackServerContext* call,
                                                    const foxserve::v1::TokenizeRequest* request,
                                                    foxserve::v1::TokenizeResponse* response) {
  if (grpc::Status auth = CheckApiKey(*call); !auth.ok()) return FinishUnary(call, auth);
  absl::StatusOr<std::vector<int32_t>> ids =
      context_->tokenizer().Encode(request->text(), request->add_bos());
  if (!ids.ok()) return FinishUnary(call, ToGrpcStatus(ids.status()));
  response->mutable_token_ids()->Assign(ids->begin(), ids->end());
  return FinishUnary(call, grpc::Status::OK);
}

grpc::ServerUnaryReactor* FoxserveService::ModelInfo(grpc::CallbackServerContext* call,
                                                     const foxserve::v1::ModelInfoRequest*,
                                                     foxserve::v1::ModelInfoResponse* response) {
  if (grpc::Status auth = CheckApiKey(*call); !auth.ok()) return FinishUnary(call, auth);
  const FoxConfig& model = context_->model_config();
  response->set_model_name(context_->model_name());
  response->set_max_model_len(static_cast<uint32_t>(context_->max_model_len()));
  response->set_vocab_size(model.vocab_size);
  response->set_num_layers(model.num_layers);
  response->set_num_heads(model.num_heads);
  response->set_hidden_size(model.hidden_size);
  return FinishUnary(call, grpc::Status::OK);
}

}  // namespace fox
