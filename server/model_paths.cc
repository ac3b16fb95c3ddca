#include "server/model_paths.h"

#include <unistd.h>

#include <climits>
#include <filesystem>

namespace fox {

std::string ExecutableDir() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return ".";
  buf[n] = '\0';
  return std::filesystem::path(buf).parent_path().string();
}

std::string DefaultModelDir() {
  return (std::filesystem::path(ExecutableDir()) / ".." / "share" / "foxserve" / "models" /
          "fox-tiny")
      .lexically_normal()
      .string();
}

}  // namespace fox
