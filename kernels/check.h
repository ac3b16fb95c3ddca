// Invariant checks: a broken invariant is a bug, so it crashes with file:line
// and what was expected, in every build type.
#pragma once

#include <cstdio>
#include <cstdlib>

#define FOX_CHECK(condition, what)                                              \
  do {                                                                          \
    if (!(condition)) {                                                         \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, what); \
      std::abort();                                                             \
    }                                                                           \
  } while (false)
