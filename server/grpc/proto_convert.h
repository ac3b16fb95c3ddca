// Conversions between the foxserve.v1 messages and the engine's records, and
// from absl::Status to grpc::Status. Pure functions: no engine, no call state.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/request.h"
#include "engine/request_stream.h"
#include "foxserve/v1/foxserve.pb.h"
#include "grpcpp/support/status.h"
#include "models/tokenizer.h"

namespace fox {

// The engine request for `request` under `id`. A text prompt is encoded with
// BOS prepended (as the HTTP side does); token ids are taken as given.
// InvalidArgument "prompt is empty" when there is no prompt; the engine
// validates everything else at Submit.
absl::StatusOr<EngineRequest> ToEngineRequest(const foxserve::v1::GenerateRequest& request,
                                              const Tokenizer& tokenizer, std::string id);

// Unset optional fields take vLLM's defaults (those of fox::SamplingParams).
SamplingParams ToSamplingParams(const foxserve::v1::SamplingParams& proto);

// Appends an event's text to `chunk`, and for a token event its id and, when
// `with_logprobs`, its logprob entry.
void AppendToChunk(const TokenEvent& event, bool with_logprobs, foxserve::v1::GenerateChunk* chunk);

// The final message for a finish event.
void ToFinal(const TokenEvent& finish, foxserve::v1::GenerateFinal* final_message);

// Same code (absl's codes are gRPC's numbers) and message.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace fox
