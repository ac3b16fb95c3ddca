// foxserve: one binary, several subcommands.
#include <cstdio>
#include <cstring>
#include <string>

#include "server/commands.h"

namespace {

constexpr char kUsage[] =
    "usage: foxserve <command> [flags]\n"
    "commands:\n"
    "  serve        serve the model over OpenAI-compatible HTTP and gRPC\n"
    "  generate     generate text from a prompt on the CPU\n"
    "  tokenize     text on stdin to JSON token ids (--decode for the reverse)\n"
    "  make-model   write a random FoX checkpoint in the official layout\n"
    "Run 'foxserve <command> --help' for the flags of a command.\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "help") == 0) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  if (command == "serve") return fox::RunServeCommand(argc, argv);
  if (command == "generate") return fox::RunGenerateCommand(argc, argv);
  if (command == "tokenize") return fox::RunTokenizeCommand(argc, argv);
  if (command == "make-model") return fox::RunMakeModelCommand(argc, argv);
  std::fprintf(stderr, "foxserve: unknown command '%s'\n%s", command.c_str(), kUsage);
  return 2;
}
