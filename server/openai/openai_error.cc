#include "server/openai/openai_error.h"

#include "nlohmann/json.hpp"
#include "server/serving_context.h"

namespace fox {
namespace {

absl::string_view ErrorType(int http_status) {
  switch (http_status) {
    case 400:
      return "BadRequestError";
    case 401:
      return "AuthenticationError";
    case 404:
      return "NotFoundError";
    case 405:
      return "MethodNotAllowedError";
    case 409:
      return "ConflictError";
    case 413:
      return "RequestEntityTooLargeError";
    case 429:
      return "RateLimitError";
    case 503:
      return "ServiceUnavailableError";
    default:
      return "InternalServerError";
  }
}

}  // namespace

std::string OpenAiErrorBody(int http_status, absl::string_view message, absl::string_view param) {
  nlohmann::json error = {{"message", std::string(message)},
                          {"type", std::string(ErrorType(http_status))},
                          {"param", nullptr},
                          {"code", http_status}};
  if (!param.empty()) error["param"] = std::string(param);
  // Messages may quote invalid UTF-8 from the request; replace it rather than throw.
  return nlohmann::json{{"error", error}}.dump(-1, ' ', false,
                                               nlohmann::json::error_handler_t::replace);
}

HttpResponse OpenAiErrorResponse(int http_status, absl::string_view message,
                                 absl::string_view param) {
  HttpResponse response;
  response.status = http_status;
  response.body = OpenAiErrorBody(http_status, message, param);
  if (http_status == 429) response.headers.emplace_back("Retry-After", "1");
  if (http_status == 401) response.headers.emplace_back("WWW-Authenticate", "Bearer");
  return response;
}

HttpResponse OpenAiErrorResponse(const absl::Status& status, absl::string_view param) {
  return OpenAiErrorResponse(HttpStatusFor(status), status.message(), param);
}

}  // namespace fox
