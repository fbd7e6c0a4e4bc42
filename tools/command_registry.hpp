// command_registry.hpp - how a subcommand of `umn` plugs in: a file in tools/<command>/ defines a
// static umn::cli::RegisterCommand whose `add` builds the CLI11 subcommand and whose `run` executes it
// after a successful parse. Exit status: run's return value; bad arguments exit 2 (main.cc).
#pragma once

#include <CLI/CLI.hpp>
#include <vector>

namespace umn::cli {

struct Command {
  CLI::App* (*add)(CLI::App& app);  // adds the subcommand and its options to app
  int (*run)();                     // runs it; returns the exit status
  CLI::App* app = nullptr;          // filled by main
};

inline std::vector<Command>& commands() {
  static std::vector<Command> registry;
  return registry;
}

struct RegisterCommand {
  RegisterCommand(CLI::App* (*add)(CLI::App&), int (*run)()) { commands().push_back({add, run}); }
};

}  // namespace umn::cli
