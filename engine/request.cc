#include "engine/request.h"

#include <utility>

namespace fox {

Request::Request(EngineRequest request, const FoxConfig& config, int32_t eos_token_id,
                 const Tokenizer* tokenizer, std::shared_ptr<RequestStream> stream_in,
                 Clock::time_point arrival)
    : id(std::move(request.id)),
      client_id(std::move(request.client_id)),
      token_ids(std::move(request.prompt_ids)),
      num_prompt_tokens(static_cast<int64_t>(token_ids.size())),
      params(std::move(request.params)),
      state(SequenceState::Empty(config)),
      blocks(config.num_layers * config.num_heads),
      history(token_ids),
      stop(params, eos_token_id),
      rng(MakeRequestRng(params.seed)),
      stream(std::move(stream_in)) {
  if (tokenizer != nullptr) detokenizer.emplace(*tokenizer);
  times.arrival = arrival;
}

void Request::DropCache(BlockPool& pool) {
  blocks.ReleaseAll(pool);
  num_computed_tokens = 0;
  state.Reset();
}

}  // namespace fox
