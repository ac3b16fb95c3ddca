// X-Request-Id: the client's own id for a request, as nginx, Envoy and vLLM
// carry it. foxserve reads it (or, without the header, vLLM's `request_id`
// body field), echoes it on the response, and writes it into the request's
// log line, so that one id follows a request through every hop's logs.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/http/http_exchange.h"
#include "server/http/http_message.h"

namespace fox {

// Longest X-Request-Id accepted (uuid4 is 36; trace ids are 32 or 55).
inline constexpr size_t kMaxClientRequestIdBytes = 256;

// The request's X-Request-Id, "" when absent. InvalidArgument (param
// "X-Request-Id") when it is longer than kMaxClientRequestIdBytes or holds
// anything but printable ASCII.
absl::StatusOr<std::string> ClientRequestId(const HttpRequest& request);
// The same check for an id from elsewhere (the body's request_id).
absl::Status CheckClientRequestId(const std::string& id, const char* where);

// `exchange`, with `X-Request-Id: <id>` added to its response head (a
// complete response or an event stream). `id` must have passed the check.
std::shared_ptr<HttpExchange> EchoingRequestId(std::shared_ptr<HttpExchange> exchange,
                                               std::string id);

}  // namespace fox
