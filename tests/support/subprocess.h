// Runs a program to completion with the given stdin and captures its output
// (tests that drive the foxserve binary, python3 or node).
#pragma once

#include <string>
#include <vector>

namespace fox::testing {

struct ProcessResult {
  int exit_code = -1;  // -1 when killed by a signal or not started
  std::string out;
  std::string err;
};

ProcessResult RunProcess(const std::vector<std::string>& argv, const std::string& input = "");

}  // namespace fox::testing
