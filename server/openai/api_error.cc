#include "server/openai/api_error.h"

#include <optional>

#include "absl/strings/cord.h"

namespace fox {
namespace {

constexpr absl::string_view kParamPayload = "foxserve/param";

}  // namespace

absl::Status InvalidParam(absl::string_view param, absl::string_view message) {
  return WithParam(absl::InvalidArgumentError(message), param);
}

absl::Status WithParam(absl::Status status, absl::string_view param) {
  if (!status.ok() && !param.empty() && !status.GetPayload(kParamPayload).has_value()) {
    status.SetPayload(kParamPayload, absl::Cord(param));
  }
  return status;
}

std::string ParamOf(const absl::Status& status) {
  const auto param = status.GetPayload(kParamPayload);
  return param.has_value() ? std::string(*param) : std::string();
}

}  // namespace fox
