// What both front ends (HTTP and gRPC) share: the engine, the tokenizer, the
// served model's name and limits, the API key, and request ids. Built once
// by `foxserve serve`; constant afterwards, so any thread may read it.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "engine/engine.h"
#include "models/config.h"
#include "models/tokenizer.h"

namespace fox {

class ServingContext {
 public:
  // `engine` and `tokenizer` must outlive the context. An empty `api_key`
  // means no key is required.
  ServingContext(Engine* engine, const Tokenizer* tokenizer, std::string model_name,
                 std::string api_key);

  Engine& engine() const { return *engine_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const FoxConfig& model_config() const { return engine_->model_config(); }
  const std::string& model_name() const { return model_name_; }
  int64_t max_model_len() const { return engine_->config().max_model_len; }
  bool requires_api_key() const { return !api_key_.empty(); }

  // True when no key is required, or `authorization` is "Bearer <key>".
  // Compares in constant time.
  bool IsAuthorized(absl::string_view authorization) const;

  // A new id, unique in this process: "<prefix>-<16 hex digits>".
  std::string NewRequestId(absl::string_view prefix);

 private:
  Engine* engine_;
  const Tokenizer* tokenizer_;
  std::string model_name_;
  std::string api_key_;
  uint64_t id_salt_;
  std::atomic<uint64_t> next_id_{0};
};

// The HTTP status for an engine or validation error: InvalidArgument and
// OutOfRange 400, Unauthenticated 401, NotFound 404, AlreadyExists 409,
// ResourceExhausted 429, Unavailable 503, anything else 500.
int HttpStatusFor(const absl::Status& status);

}  // namespace fox
