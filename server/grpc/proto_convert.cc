#include "server/grpc/proto_convert.h"

#include <algorithm>
#include <cstdint>
#include <limits>

namespace fox {

absl::StatusOr<EngineRequest> ToEngineRequest(const foxserve::v1::GenerateRequest& request,
                                              const Tokenizer& tokenizer, std::string id) {
  EngineRequest out;
  out.id = std::move(id);
  switch (request.prompt_case()) {
    case foxserve::v1::GenerateRequest::kText: {
      // Checked before encoding: BOS alone would make an empty text look like a prompt.
      if (request.text().empty()) return absl::InvalidArgumentError("prompt is empty");
      absl::StatusOr<std::vector<int32_t>> ids = tokenizer.Encode(request.text(), true);
      if (!ids.ok()) return ids.status();
      out.prompt_ids = std::move(*ids);
      break;
    }
    case foxserve::v1::GenerateRequest::kTokenIds:
      out.prompt_ids.assign(request.token_ids().ids().begin(), request.token_ids().ids().end());
      break;
    case foxserve::v1::GenerateRequest::PROMPT_NOT_SET:
      break;
  }
  if (out.prompt_ids.empty()) return absl::InvalidArgumentError("prompt is empty");
  out.params = ToSamplingParams(request.sampling());
  return out;
}

SamplingParams ToSamplingParams(const foxserve::v1::SamplingParams& proto) {
  SamplingParams params;  // vLLM's defaults
  if (proto.has_max_tokens()) params.max_tokens = proto.max_tokens();
  if (proto.has_temperature()) params.temperature = proto.temperature();
  if (proto.has_top_p()) params.top_p = proto.top_p();
  if (proto.top_k() != 0) params.top_k = proto.top_k();
  params.min_p = proto.min_p();
  if (proto.has_repetition_penalty()) params.repetition_penalty = proto.repetition_penalty();
  params.presence_penalty = proto.presence_penalty();
  params.frequency_penalty = proto.frequency_penalty();
  if (proto.has_seed()) params.seed = proto.seed();
  params.stop.assign(proto.stop().begin(), proto.stop().end());
  params.stop_token_ids.assign(proto.stop_token_ids().begin(), proto.stop_token_ids().end());
  params.min_tokens = proto.min_tokens();
  params.ignore_eos = proto.ignore_eos();
  params.include_stop_str_in_output = proto.include_stop_str_in_output();
  if (proto.logprobs() > 0) {
    // Clamped so that a huge value stays huge (and is refused by validation).
    params.logprobs = static_cast<int32_t>(
        std::min<uint32_t>(proto.logprobs(), std::numeric_limits<int32_t>::max()));
  }
  return params;
}

void AppendToChunk(const TokenEvent& event, bool with_logprobs,
                   foxserve::v1::GenerateChunk* chunk) {
  chunk->mutable_text()->append(event.text);
  if (event.is_finish()) return;
  chunk->add_token_ids(event.token_id);
  if (!with_logprobs) return;
  foxserve::v1::TokenLogprob* entry = chunk->add_logprobs();
  entry->set_token_id(event.token_id);
  entry->set_logprob(event.logprob);
  for (const TopLogprob& alt : event.top_logprobs) {
    foxserve::v1::TopLogprob* top = entry->add_top();
    top->set_token_id(alt.token_id);
    top->set_logprob(alt.logprob);
  }
}

void ToFinal(const TokenEvent& finish, foxserve::v1::GenerateFinal* final_message) {
  final_message->set_finish_reason(std::string(FinishReasonName(finish.finish_reason)));
  final_message->mutable_usage()->set_prompt_tokens(static_cast<uint32_t>(finish.prompt_tokens));
  final_message->mutable_usage()->set_completion_tokens(
      static_cast<uint32_t>(finish.completion_tokens));
  if (finish.stop_token_id) {
    final_message->set_stop_token_id(*finish.stop_token_id);
  } else if (finish.stop_string) {
    final_message->set_stop_string(*finish.stop_string);
  }
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

}  // namespace fox
