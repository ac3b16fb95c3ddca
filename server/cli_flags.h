// Per-subcommand command-line flags: `--name value`, `--name=value`, and bare
// `--name` for booleans. Each subcommand declares its own FlagSet, so a flag
// one subcommand does not know is an error rather than silently ignored.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"

namespace fox {

class FlagSet {
 public:
  explicit FlagSet(std::string command) : command_(std::move(command)) {}

  // Registers a flag bound to `*target`, which holds its default and receives
  // the parsed value. `target` must outlive Parse().
  void Add(const std::string& name, std::string* target, const std::string& help);
  void Add(const std::string& name, int64_t* target, const std::string& help);
  void Add(const std::string& name, double* target, const std::string& help);
  void Add(const std::string& name, bool* target, const std::string& help);

  // Parses argv[first..argc). Unknown flags, missing values, bad numbers and
  // positional arguments are errors naming the flag.
  absl::Status Parse(int argc, char** argv, int first);

  bool WasSet(const std::string& name) const;
  std::string Usage() const;

 private:
  using Target = std::variant<std::string*, int64_t*, double*, bool*>;
  struct Flag {
    std::string name;
    Target target;
    std::string help;
    std::string default_text;
    bool set = false;
  };
  Flag* Find(const std::string& name);

  std::string command_;
  std::vector<Flag> flags_;
};

}  // namespace fox
