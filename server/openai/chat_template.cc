#include "server/openai/chat_template.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "models/bounded_json.h"
#include "nlohmann/json.hpp"
#include "server/openai/api_error.h"

namespace fox {
namespace {

constexpr char kContent[] = "{content}";

absl::Status CheckPattern(const std::string& path, const std::string& field,
                          const std::string& pattern) {
  const size_t first = pattern.find(kContent);
  if (first == std::string::npos || pattern.find(kContent, first + 1) != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("--chat-template ", path, ": \"", field,
                                                   "\" must contain {content} exactly once"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ChatTemplate> ChatTemplate::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("--chat-template: cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  const absl::StatusOr<nlohmann::json> parsed =
      ParseBoundedJson(text.str(), absl::StrCat("--chat-template ", path));
  if (!parsed.ok()) return parsed.status();
  const nlohmann::json& json = *parsed;
  if (!json.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--chat-template ", path, ": not a JSON object (see the README's format)"));
  }
  ChatTemplate result;
  for (const auto& [key, value] : json.items()) {
    std::string* pattern = key == "system"      ? &result.system
                           : key == "user"      ? &result.user
                           : key == "assistant" ? &result.assistant
                                                : nullptr;
    if (pattern != nullptr || key == "generation_prompt") {
      if (!value.is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--chat-template ", path, ": \"", key, "\" must be a string"));
      }
      if (pattern == nullptr) {
        result.generation_prompt = value.get<std::string>();
        continue;
      }
      *pattern = value.get<std::string>();
      if (absl::Status s = CheckPattern(path, key, *pattern); !s.ok()) return s;
    } else if (key == "add_bos") {
      if (!value.is_boolean()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--chat-template ", path, ": \"add_bos\" must be true or false"));
      }
      result.add_bos = value.get<bool>();
    } else if (key == "stop") {
      if (!value.is_array()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--chat-template ", path, ": \"stop\" must be a list of strings"));
      }
      for (const nlohmann::json& s : value) {
        if (!s.is_string() || s.get<std::string>().empty()) {
          return absl::InvalidArgumentError(
              absl::StrCat("--chat-template ", path, ": \"stop\" must hold non-empty strings"));
        }
        result.stop.push_back(s.get<std::string>());
      }
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("--chat-template ", path, ": unknown field \"", key,
                       "\" (expected system, user, assistant, generation_prompt, add_bos, stop)"));
    }
  }
  return result;
}

absl::StatusOr<std::string> ChatTemplate::Render(const std::vector<ChatMessage>& messages,
                                                 bool add_generation_prompt) const {
  std::string prompt;
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string& role = messages[i].role;
    const std::string* pattern = role == "system" || role == "developer" ? &system
                                 : role == "user"                        ? &user
                                 : role == "assistant"                   ? &assistant
                                                                         : nullptr;
    if (pattern == nullptr) {
      return InvalidParam("messages",
                          absl::StrCat("messages[", i, "].role must be system, ",
                                       "developer, user or assistant, got \"", role, "\""));
    }
    absl::StrAppend(&prompt, absl::StrReplaceAll(*pattern, {{kContent, messages[i].content}}));
  }
  if (add_generation_prompt) absl::StrAppend(&prompt, generation_prompt);
  return prompt;
}

}  // namespace fox
