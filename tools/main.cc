// main.cc - the `umn` command: parses the command line and runs the chosen subcommand.
#include <cstdio>

#include "command_registry.hpp"

int main(int argc, char** argv) {
  CLI::App app{"umn - userspace MMU notifiers: simulations and traces of real programs"};
  app.require_subcommand(1);
  for (auto& command : umn::cli::commands()) command.app = command.add(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int status = app.exit(e);  // prints help or the error
    return status == 0 ? 0 : 2;
  }
  for (auto& command : umn::cli::commands())
    if (command.app != nullptr && command.app->parsed()) return command.run();
  return 2;
}
