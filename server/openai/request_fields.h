// Which request fields foxserve reads, which it refuses, and which it lets
// through as no-ops, for the completions and chat APIs (OpenAI's fields and
// vLLM's extensions). A field whose meaning foxserve does not implement is a
// 400 naming it, unless it holds the value that means "nothing" (clients send
// `tools: []`, `response_format: {"type": "text"}` by default); a field in
// neither API's set is ignored, as vLLM does, and reported so the caller can
// log it once.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"

namespace fox {

enum class RequestApi { kCompletion, kChat };

// OK, or InvalidArgument naming the first field whose meaning is not
// implemented ("response_format of type json_schema is not supported").
// Fields outside both APIs' sets are appended to `unknown` (may be null).
absl::Status CheckRequestFields(const nlohmann::json& body, RequestApi api,
                                std::vector<std::string>* unknown);

}  // namespace fox
