// Where the embedded default model lives: <dir of the executable>/../share/
// foxserve/models/fox-tiny, which holds in the build tree, an install prefix
// and a container alike.
#pragma once

#include <string>

namespace fox {

std::string ExecutableDir();
std::string DefaultModelDir();

}  // namespace fox
