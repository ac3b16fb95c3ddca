// OpenAI's error body, which every HTTP error response carries:
//   {"error": {"message": "...", "type": "BadRequestError", "param": null, "code": 400}}
// `type` follows vLLM's names for the status (BadRequestError, NotFoundError,
// ...); `code` repeats the HTTP status, as vLLM's server does.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "server/http/http_message.h"

namespace fox {

// `param` names the offending request field, or is empty (JSON null).
std::string OpenAiErrorBody(int http_status, absl::string_view message,
                            absl::string_view param = {});
HttpResponse OpenAiErrorResponse(int http_status, absl::string_view message,
                                 absl::string_view param = {});
// Status code from HttpStatusFor; 429 adds Retry-After, 401 WWW-Authenticate.
HttpResponse OpenAiErrorResponse(const absl::Status& status, absl::string_view param = {});

}  // namespace fox
