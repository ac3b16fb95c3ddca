// What the engine reports as it happens, for metrics: the gap before each
// generated token after a request's first, and every finished request with
// its times and counts. The engine calls these on its own thread, so an
// observer keeps them short and thread-safe against its readers.
#pragma once

#include <string>

#include "engine/request_stream.h"

namespace fox {

class EngineObserver {
 public:
  virtual ~EngineObserver() = default;

  // A request got a token `seconds` after its previous one.
  virtual void OnInterTokenLatency(double seconds) = 0;
  // A request ended; `finish` is its finish event (times, token counts,
  // finish reason), sent right after this returns. `client_id` is the
  // caller's id for it (EngineRequest::client_id), often empty.
  virtual void OnRequestFinished(const std::string& request_id, const std::string& client_id,
                                 const TokenEvent& finish) = 0;
};

}  // namespace fox
