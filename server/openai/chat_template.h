// How chat messages become one prompt. The released FoX checkpoints are base
// models with no chat format of their own, so the default is a plain
// transcript:
//
//   <system content>\n\n          (system messages, as they are)
//   User: <content>\n\n
//   Assistant: <content>\n\n
//   Assistant:                    (the generation prompt)
//
// A --chat-template FILE replaces it: a JSON object with one pattern per role,
// each holding "{content}" exactly once, and optional fields:
//
//   {"system": "{content}\n\n", "user": "User: {content}\n\n",
//    "assistant": "Assistant: {content}\n\n", "generation_prompt": "Assistant:",
//    "add_bos": true, "stop": ["\nUser:"]}
//
// "stop" strings are added to every chat request's own. (Hugging Face's Jinja
// templates would need a Jinja engine, which Debian does not package.)
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace fox {

struct ChatMessage {
  std::string role;  // system, user, assistant (developer counts as system)
  std::string content;
};

struct ChatTemplate {
  std::string system = "{content}\n\n";
  std::string user = "User: {content}\n\n";
  std::string assistant = "Assistant: {content}\n\n";
  std::string generation_prompt = "Assistant:";
  bool add_bos = true;
  std::vector<std::string> stop;

  // Reads and checks a template file; errors name the file and the field.
  static absl::StatusOr<ChatTemplate> Load(const std::string& path);
  // The prompt text for `messages`, ending with the generation prompt when
  // `add_generation_prompt`. InvalidArgument for an unknown role.
  absl::StatusOr<std::string> Render(const std::vector<ChatMessage>& messages,
                                     bool add_generation_prompt = true) const;
};

}  // namespace fox
