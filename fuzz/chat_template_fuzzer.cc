// Chat templates (server/openai/chat_template.h): ChatTemplate::Load on a
// fuzzed template file, then Render of fuzzed messages with the loaded
// template (or the default one when Load refuses the file).
// Input layout (FuzzedDataProvider): the template file's text, then
// messages as (role choice, content) pairs, then add_generation_prompt.
// Properties:
//  - a loaded template has "{content}" exactly once in each role's pattern
//    and only non-empty stop strings;
//  - Render refuses exactly the messages with an unknown role (naming the
//    messages field), and otherwise returns each message's pattern with
//    "{content}" replaced by the content once (content that itself spells
//    "{content}" is not substituted again), then the generation prompt.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_support.h"
#include "server/openai/api_error.h"
#include "server/openai/chat_template.h"

namespace fox::fuzz {
namespace {

constexpr char kContent[] = "{content}";

size_t CountOf(const std::string& haystack, const std::string& needle) {
  size_t count = 0;
  for (size_t pos = haystack.find(needle); pos != std::string::npos;
       pos = haystack.find(needle, pos + 1)) {
    ++count;
  }
  return count;
}

// `pattern` with its one "{content}" replaced by `content`.
std::string Fill(const std::string& pattern, const std::string& content) {
  const size_t at = pattern.find(kContent);
  FOX_FUZZ_CHECK(at != std::string::npos, Escaped(pattern));
  return absl::StrCat(pattern.substr(0, at), content, pattern.substr(at + sizeof(kContent) - 1));
}

const std::string* PatternFor(const ChatTemplate& t, const std::string& role) {
  if (role == "system" || role == "developer") return &t.system;
  if (role == "user") return &t.user;
  if (role == "assistant") return &t.assistant;
  return nullptr;
}

}  // namespace
}  // namespace fox::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using fox::fuzz::Escaped;
  FuzzedDataProvider input(data, size);
  const std::string file_text = input.ConsumeRandomLengthString(2048);
  fox::ChatTemplate chat_template;
  const absl::StatusOr<fox::ChatTemplate> loaded =
      fox::ChatTemplate::Load(fox::fuzz::WriteScratchFile(file_text));
  if (loaded.ok()) {
    for (const std::string* pattern : {&loaded->system, &loaded->user, &loaded->assistant}) {
      FOX_FUZZ_CHECK(fox::fuzz::CountOf(*pattern, fox::fuzz::kContent) == 1,
                     absl::StrCat(Escaped(file_text), " pattern ", Escaped(*pattern)));
    }
    for (const std::string& stop : loaded->stop) FOX_FUZZ_CHECK(!stop.empty(), Escaped(file_text));
    chat_template = *loaded;
  } else {
    FOX_FUZZ_CHECK(loaded.status().code() == absl::StatusCode::kInvalidArgument,
                   absl::StrCat(Escaped(file_text), " -> ", loaded.status().ToString()));
  }

  static const char* const kRoles[] = {"system", "developer", "user", "assistant", "tool", ""};
  std::vector<fox::ChatMessage> messages;
  while (input.remaining_bytes() > 1 && messages.size() < 64) {
    fox::ChatMessage message;
    const size_t choice = input.ConsumeIntegralInRange<size_t>(0, std::size(kRoles));
    message.role = choice < std::size(kRoles) ? kRoles[choice] : input.ConsumeRandomLengthString(16);
    message.content = input.ConsumeRandomLengthString(256);
    messages.push_back(std::move(message));
  }
  const bool add_generation_prompt = input.ConsumeBool();

  const absl::StatusOr<std::string> rendered =
      chat_template.Render(messages, add_generation_prompt);
  std::string expected;
  bool has_unknown_role = false;
  for (const fox::ChatMessage& message : messages) {
    const std::string* pattern = fox::fuzz::PatternFor(chat_template, message.role);
    if (pattern == nullptr) {
      has_unknown_role = true;
      break;
    }
    expected += fox::fuzz::Fill(*pattern, message.content);
  }
  if (add_generation_prompt) expected += chat_template.generation_prompt;
  if (has_unknown_role) {
    FOX_FUZZ_CHECK(!rendered.ok() && fox::ParamOf(rendered.status()) == "messages",
                   rendered.ok() ? Escaped(*rendered) : rendered.status().ToString());
    return 0;
  }
  FOX_FUZZ_CHECK(rendered.ok(), rendered.status().ToString());
  FOX_FUZZ_CHECK(*rendered == expected,
                 absl::StrCat("rendered ", Escaped(*rendered), ", expected ", Escaped(expected)));
  return 0;
}
