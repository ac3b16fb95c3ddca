// `foxserve serve`: placeholder until the serving command lands.
#include <cstdio>

#include "server/commands.h"

namespace fox {

int RunServeCommand(int, char**) {
  std::fputs("foxserve serve: not built yet\n", stderr);
  return 1;
}

}  // namespace fox
