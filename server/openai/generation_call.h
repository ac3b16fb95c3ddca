// One completion or chat request in flight: it submits an engine request per
// choice (prompts x n), turns their events into OpenAI's response or SSE
// chunks on the exchange's strand, and aborts whatever still runs when the
// client goes away.
//
// Lifetime: each engine stream's notifier holds the call until that stream's
// finish event has been drained, and every accepted engine request ends with
// one, so the call lives exactly as long as its engine requests.
#pragma once

#include <memory>

#include "server/http/http_exchange.h"
#include "server/openai/generation_request.h"
#include "server/serving_context.h"

namespace fox {

// Submits `request` and answers through `exchange`: a complete response, an
// event stream, or an error response when the engine refuses it (429 when
// its queue is full, 503 while shutting down).
void StartGenerationCall(GenerationRequest request, ServingContext& context,
                         std::shared_ptr<HttpExchange> exchange);

}  // namespace fox
