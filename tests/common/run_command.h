// Runs a shell command from a test and collects what it prints: how tests drive the hearth
// binary and the reference programs (Python jinja2, node) they compare against.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace hearth::testing {

struct CommandResult {
    int exit_code = -1;  // -1 when the command could not start or did not exit normally
    std::string output;  // stdout only; add " 2>&1" to the command to collect stderr too
};

inline CommandResult run_command(const std::string& command) {
    FILE* pipe = ::popen(command.c_str(), "r");
    if (!pipe) return {};
    CommandResult result;
    char buffer[65536];
    for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) result.output.append(buffer, n);
    const int status = ::pclose(pipe);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return result;
}

}  // namespace hearth::testing
