// What the completion and chat request targets check on every parse result:
// an accepted request holds only prompts the engine can run (ids in the
// vocabulary, sampling parameters it accepts), and a refused one is a 400 or
// 404 whose OpenAI error body (openai_error.h) is valid JSON carrying the
// message.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "engine/sampling_params.h"
#include "fuzz/fuzz_support.h"
#include "nlohmann/json.hpp"
#include "server/openai/api_error.h"
#include "server/openai/generation_request.h"
#include "server/openai/openai_error.h"

namespace fox::fuzz {

inline void CheckGenerationRequest(const std::string& body,
                                   const absl::StatusOr<GenerationRequest>& result) {
  const ServingContext& context = TinyServingContext();
  if (!result.ok()) {
    const absl::Status& status = result.status();
    const int http_status = HttpStatusFor(status);
    FOX_FUZZ_CHECK(http_status == 400 || http_status == 404,
                   absl::StrCat(Escaped(body), " -> ", status.ToString()));
    FOX_FUZZ_CHECK(!status.message().empty(), Escaped(body));
    const std::string error_body = OpenAiErrorBody(http_status, status.message(), ParamOf(status));
    const nlohmann::json parsed = nlohmann::json::parse(error_body, nullptr, false);
    FOX_FUZZ_CHECK(parsed.is_object() && parsed["error"]["message"].is_string(),
                   Escaped(error_body));
    return;
  }
  const GenerationRequest& request = *result;
  FOX_FUZZ_CHECK(!request.prompts.empty(), Escaped(body));
  FOX_FUZZ_CHECK(request.prompts.size() == request.prompt_texts.size(), Escaped(body));
  FOX_FUZZ_CHECK(request.n >= 1, Escaped(body));
  for (const std::vector<int32_t>& prompt : request.prompts) {
    FOX_FUZZ_CHECK(!prompt.empty(), Escaped(body));
    for (const int32_t id : prompt) {
      FOX_FUZZ_CHECK(context.tokenizer().IsKnown(id), absl::StrCat(Escaped(body), " id ", id));
    }
  }
  const absl::Status params = ValidateSamplingParams(request.params, context.model_config().vocab_size);
  FOX_FUZZ_CHECK(params.ok(), absl::StrCat(Escaped(body), " -> ", params.ToString()));
  // What Submit would say: may refuse (a prompt too long for max_model_len),
  // but only as a client error.
  EngineRequest engine_request;
  engine_request.id = "fuzz";
  engine_request.prompt_ids = request.prompts[0];
  engine_request.params = request.params;
  const absl::Status valid = TinyEngineCore().Validate(engine_request);
  FOX_FUZZ_CHECK(valid.ok() || HttpStatusFor(valid) == 400,
                 absl::StrCat(Escaped(body), " -> ", valid.ToString()));
}

}  // namespace fox::fuzz
