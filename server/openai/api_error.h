// Request errors that name the field they concern. The HTTP layer turns them
// into OpenAI error bodies whose `param` is that field (see openai_error.h).
// The field travels as a payload of the absl::Status, so parsing code can
// return plain absl::Status / absl::StatusOr values.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace fox {

// InvalidArgument with `message`, naming `param`.
absl::Status InvalidParam(absl::string_view param, absl::string_view message);
// `status` with `param` attached (when it has none yet).
absl::Status WithParam(absl::Status status, absl::string_view param);
// The attached field, or "" when none.
std::string ParamOf(const absl::Status& status);

}  // namespace fox
