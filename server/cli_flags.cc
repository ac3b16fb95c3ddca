#include "server/cli_flags.h"

#include <cerrno>
#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace fox {
namespace {

std::string DefaultText(const std::string* v) { return v->empty() ? "" : "\"" + *v + "\""; }
std::string DefaultText(const int64_t* v) { return std::to_string(*v); }
std::string DefaultText(const double* v) { return absl::StrCat(*v); }
std::string DefaultText(const bool* v) { return *v ? "true" : "false"; }

absl::Status SetValue(const std::string& name, const std::string& text, std::string* target) {
  *target = text;
  return absl::OkStatus();
}

absl::Status SetValue(const std::string& name, const std::string& text, int64_t* target) {
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno == ERANGE) {
    return absl::InvalidArgumentError(absl::StrCat("--", name, ": expected an integer, got '", text, "'"));
  }
  *target = v;
  return absl::OkStatus();
}

absl::Status SetValue(const std::string& name, const std::string& text, double* target) {
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || errno == ERANGE) {
    return absl::InvalidArgumentError(absl::StrCat("--", name, ": expected a number, got '", text, "'"));
  }
  *target = v;
  return absl::OkStatus();
}

absl::Status SetValue(const std::string& name, const std::string& text, bool* target) {
  if (text == "true" || text == "1" || text == "on") {
    *target = true;
  } else if (text == "false" || text == "0" || text == "off") {
    *target = false;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("--", name, ": expected true or false, got '", text, "'"));
  }
  return absl::OkStatus();
}

}  // namespace

void FlagSet::Add(const std::string& name, std::string* target, const std::string& help) {
  flags_.push_back({name, target, help, DefaultText(target)});
}
void FlagSet::Add(const std::string& name, int64_t* target, const std::string& help) {
  flags_.push_back({name, target, help, DefaultText(target)});
}
void FlagSet::Add(const std::string& name, double* target, const std::string& help) {
  flags_.push_back({name, target, help, DefaultText(target)});
}
void FlagSet::Add(const std::string& name, bool* target, const std::string& help) {
  flags_.push_back({name, target, help, DefaultText(target)});
}

FlagSet::Flag* FlagSet::Find(const std::string& name) {
  for (Flag& f : flags_) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

bool FlagSet::WasSet(const std::string& name) const {
  for (const Flag& f : flags_) {
    if (f.name == name) return f.set;
  }
  return false;
}

absl::Status FlagSet::Parse(int argc, char** argv, int first) {
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.size() < 3 || arg.compare(0, 2, "--") != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(command_, ": unexpected argument '", arg, "' (flags start with --)"));
    }
    std::string name = arg.substr(2);
    std::string value;
    bool has_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    Flag* flag = Find(name);
    if (flag == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(command_, ": unknown flag --", name));
    }
    if (!has_value) {
      if (std::holds_alternative<bool*>(flag->target)) {
        value = "true";
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        return absl::InvalidArgumentError(absl::StrCat("--", name, ": missing value"));
      }
    }
    absl::Status status =
        std::visit([&](auto* target) { return SetValue(name, value, target); }, flag->target);
    if (!status.ok()) return status;
    flag->set = true;
  }
  return absl::OkStatus();
}

std::string FlagSet::Usage() const {
  std::string out = absl::StrCat("usage: foxserve ", command_, " [flags]\n");
  for (const Flag& f : flags_) {
    absl::StrAppend(&out, "  --", f.name, "  ", f.help);
    if (!f.default_text.empty()) absl::StrAppend(&out, " (default ", f.default_text, ")");
    absl::StrAppend(&out, "\n");
  }
  return out;
}

}  // namespace fox
