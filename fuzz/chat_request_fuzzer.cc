// POST /v1/chat/completions bodies: ParseChatRequest (generation_request.h)
// with the default chat template over the embedded model's serving context.
// Properties: generation_checks.h, and an accepted request has one prompt
// whose text ends with the generation prompt unless the body turned it off.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/match.h"
#include "fuzz/generation_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  static const fox::ChatTemplate chat_template;
  const absl::StatusOr<fox::GenerationRequest> result =
      fox::ParseChatRequest(body, fox::fuzz::TinyServingContext(), chat_template);
  fox::fuzz::CheckGenerationRequest(body, result);
  if (result.ok()) {
    FOX_FUZZ_CHECK(result->prompts.size() == 1, fox::fuzz::Escaped(body));
    const std::string& text = result->prompt_texts[0];
    FOX_FUZZ_CHECK(absl::EndsWith(text, chat_template.generation_prompt) ||
                       body.find("add_generation_prompt") != std::string::npos,
                   fox::fuzz::Escaped(body));
  }
  return 0;
}
