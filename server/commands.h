// The subcommands of the foxserve binary. Each parses its own flags from
// argv[2..] and returns the process exit code; errors go to stderr.
#pragma once

namespace fox {

int RunGenerateCommand(int argc, char** argv);
int RunTokenizeCommand(int argc, char** argv);
int RunMakeModelCommand(int argc, char** argv);
int RunServeCommand(int argc, char** argv);

}  // namespace fox
