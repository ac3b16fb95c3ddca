#include "server/serving_context.h"

#include <random>

#include "absl/strings/str_format.h"

namespace fox {

ServingContext::ServingContext(Engine* engine, const Tokenizer* tokenizer, std::string model_name,
                               std::string api_key)
    : engine_(engine),
      tokenizer_(tokenizer),
      model_name_(std::move(model_name)),
      api_key_(std::move(api_key)),
      id_salt_(std::random_device{}() * uint64_t{0x9E3779B97F4A7C15}) {}

bool ServingContext::IsAuthorized(absl::string_view authorization) const {
  if (api_key_.empty()) return true;
  constexpr absl::string_view kBearer = "Bearer ";
  if (authorization.substr(0, kBearer.size()) != kBearer) return false;
  const absl::string_view given = authorization.substr(kBearer.size());
  // Constant time in the key's length: no early exit on the first mismatch.
  unsigned diff = given.size() == api_key_.size() ? 0 : 1;
  for (size_t i = 0; i < api_key_.size(); ++i) {
    diff |= static_cast<unsigned char>(api_key_[i]) ^
            static_cast<unsigned char>(i < given.size() ? given[i] : 0);
  }
  return diff == 0;
}

std::string ServingContext::NewRequestId(absl::string_view prefix) {
  const uint64_t n = next_id_.fetch_add(1, std::memory_order_relaxed);
  return absl::StrFormat("%s-%016x", prefix, (n + 1) * 0xD6E8FEB86659FD93ULL ^ id_salt_);
}

int HttpStatusFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAlreadyExists:
      return 409;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

}  // namespace fox
