#include "engine/generator.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "engine/block_pool.h"
#include "engine/sequence_blocks.h"
#include "models/forward.h"

namespace fox {
namespace {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

absl::StatusOr<GenerateResult> Generate(const Checkpoint& model, absl::Span<const int32_t> prompt,
                                        const GenerateOptions& options,
                                        const TokenCallback& on_token) {
  const FoxConfig& config = model.config;
  if (prompt.empty()) return absl::InvalidArgumentError("prompt is empty");
  if (options.max_tokens < 1) return absl::InvalidArgumentError("max_tokens must be at least 1");
  for (size_t i = 0; i < prompt.size(); ++i) {
    if (prompt[i] < 0 || prompt[i] >= config.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat("prompt token ", prompt[i], " at index ", i,
                                                     " is outside the vocabulary [0, ",
                                                     config.vocab_size, ")"));
    }
  }
  const int32_t num_tables = config.num_layers * config.num_heads;
  const int64_t total_tokens = static_cast<int64_t>(prompt.size()) + options.max_tokens;
  const int64_t blocks_per_table = (total_tokens + options.block_size - 1) / options.block_size;
  BlockPool pool(static_cast<int32_t>(blocks_per_table * num_tables), options.block_size,
                 config.head_dim, options.kv_dtype);
  SequenceBlocks blocks(num_tables);
  if (!blocks.Reserve(pool, total_tokens)) return absl::InternalError("KV pool sized too small");

  ForwardOptions forward_options;
  forward_options.acp = options.acp;
  forward_options.acp_log_eps = options.acp_log_eps;
  CpuForward forward(config, model.weights, forward_options);
  SequenceState state = SequenceState::Empty(config);
  std::mt19937_64 rng = MakeRequestRng(options.sampling.seed);
  std::vector<float> logits;
  ForwardCounters counters;
  GenerateResult result;

  auto start = std::chrono::steady_clock::now();
  for (size_t begin = 0; begin < prompt.size(); begin += options.prefill_chunk) {
    const size_t n = std::min<size_t>(options.prefill_chunk, prompt.size() - begin);
    ForwardSequence seq{prompt.subspan(begin, n), &state, blocks.Views().data(), false};
    forward.Run({&seq, 1}, pool.view(), &logits, &counters);
  }
  result.prefill_seconds = SecondsSince(start);

  start = std::chrono::steady_clock::now();
  result.finish_reason = "length";
  for (int64_t step = 0; step < options.max_tokens; ++step) {
    if (step > 0) {
      const int32_t last = result.token_ids.back();
      ForwardSequence seq{{&last, 1}, &state, blocks.Views().data(), false};
      forward.Run({&seq, 1}, pool.view(), &logits, &counters);
    }
    const int32_t token = SampleToken(logits.data(), config.vocab_size, options.sampling, rng);
    const float logprob = TokenLogprob(logits.data(), config.vocab_size, token);
    result.token_ids.push_back(token);
    result.logprobs.push_back(logprob);
    if (on_token) on_token(token, logprob);
    if (options.stop_at_eos && token == options.eos_token_id) {
      result.finish_reason = "stop";
      break;
    }
  }
  result.decode_seconds = SecondsSince(start);
  result.key_blocks_read = counters.key_blocks_read;
  result.key_blocks_skipped = counters.key_blocks_skipped;
  blocks.ReleaseAll(pool);
  return result;
}

}  // namespace fox
