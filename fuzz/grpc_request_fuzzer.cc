// The gRPC request conversion (server/grpc/proto_convert.h): bytes parsed as
// a foxserve.v1.GenerateRequest (as the gRPC runtime would hand them to the
// service), then ToEngineRequest with the embedded model's tokenizer, then
// the engine's own Validate (what Submit checks).
// Properties: a converted request has a non-empty prompt; a text prompt
// becomes BOS + Encode(text), token ids pass through unchanged; unset
// sampling fields take SamplingParams' defaults; the engine refuses only
// with InvalidArgument; conversion refuses only with InvalidArgument.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/sampling_params.h"
#include "foxserve/v1/foxserve.pb.h"
#include "google/protobuf/stubs/logging.h"
#include "fuzz/fuzz_support.h"
#include "server/grpc/proto_convert.h"

namespace {

std::string Shown(const foxserve::v1::GenerateRequest& request) {
  return request.ShortDebugString().substr(0, 2000);
}

}  // namespace

// Protobuf logs every string field it refuses as invalid UTF-8; at thousands
// of inputs a second that is most of the time, so its log is dropped.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  foxserve::v1::GenerateRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  const fox::Tokenizer& tokenizer = fox::fuzz::Gpt2Tokenizer(/*json_escaped=*/true);
  const absl::StatusOr<fox::EngineRequest> converted =
      fox::ToEngineRequest(request, tokenizer, "fuzz-1");
  if (!converted.ok()) {
    FOX_FUZZ_CHECK(converted.status().code() == absl::StatusCode::kInvalidArgument,
                   absl::StrCat(Shown(request), " -> ", converted.status().ToString()));
    return 0;
  }
  const fox::EngineRequest& engine_request = *converted;
  FOX_FUZZ_CHECK(engine_request.id == "fuzz-1", engine_request.id);
  FOX_FUZZ_CHECK(!engine_request.prompt_ids.empty(), Shown(request));
  if (request.prompt_case() == foxserve::v1::GenerateRequest::kText) {
    const absl::StatusOr<std::vector<int32_t>> ids = tokenizer.Encode(request.text(), true);
    FOX_FUZZ_CHECK(ids.ok() && *ids == engine_request.prompt_ids, Shown(request));
  } else {
    FOX_FUZZ_CHECK(std::vector<int32_t>(request.token_ids().ids().begin(),
                                        request.token_ids().ids().end()) ==
                       engine_request.prompt_ids,
                   Shown(request));
  }
  const fox::SamplingParams defaults;
  const foxserve::v1::SamplingParams& sampling = request.sampling();
  const fox::SamplingParams& params = engine_request.params;
  if (!sampling.has_max_tokens()) FOX_FUZZ_CHECK(params.max_tokens == defaults.max_tokens, Shown(request));
  if (!sampling.has_temperature()) {
    FOX_FUZZ_CHECK(params.temperature == defaults.temperature, Shown(request));
  }
  if (!sampling.has_top_p()) FOX_FUZZ_CHECK(params.top_p == defaults.top_p, Shown(request));
  if (!sampling.has_seed()) FOX_FUZZ_CHECK(params.seed == defaults.seed, Shown(request));
  FOX_FUZZ_CHECK(static_cast<int>(params.stop.size()) == sampling.stop_size(), Shown(request));
  if (sampling.logprobs() > 0) {
    FOX_FUZZ_CHECK(params.logprobs.has_value() && *params.logprobs > 0, Shown(request));
  }
  const absl::Status valid = fox::fuzz::TinyEngineCore().Validate(engine_request);
  FOX_FUZZ_CHECK(valid.ok() || valid.code() == absl::StatusCode::kInvalidArgument,
                 absl::StrCat(Shown(request), " -> ", valid.ToString()));
  // What the service does with an accepted one's refusal: a gRPC status.
  if (!valid.ok()) {
    const grpc::Status status = fox::ToGrpcStatus(valid);
    FOX_FUZZ_CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT, Shown(request));
  }
  return 0;
}
