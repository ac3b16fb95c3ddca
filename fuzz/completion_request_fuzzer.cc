// POST /v1/completions bodies: ParseCompletionRequest (generation_request.h)
// over the embedded model's serving context. Properties: generation_checks.h.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/generation_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  fox::fuzz::CheckGenerationRequest(
      body, fox::ParseCompletionRequest(body, fox::fuzz::TinyServingContext()));
  return 0;
}
