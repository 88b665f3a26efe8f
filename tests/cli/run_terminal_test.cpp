// `hearth run` on a real terminal (a pseudo-terminal): the interactive chat starts without
// --interactive, Ctrl-C stops the answer being streamed but not the program, and /bye leaves.
#include <gtest/gtest.h>

#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <string>

#include "common/run_command.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Reads what the terminal shows for `seconds`, or until `wanted` appears after what was on the
// screen when the call began.
void read_terminal(int fd, std::string& screen, double seconds, const std::string& wanted = "") {
    const auto end = Clock::now() + std::chrono::duration<double>(seconds);
    const size_t start = screen.size();
    while (Clock::now() < end) {
        if (!wanted.empty() && screen.find(wanted, start) != std::string::npos) return;
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        char buffer[4096];
        const ssize_t n = read(fd, buffer, sizeof buffer);
        if (n <= 0) return;
        screen.append(buffer, static_cast<size_t>(n));
    }
}

TEST(RunTerminal, CtrlCStopsTheAnswerNotTheChat) {
    const fs::path model = fs::temp_directory_path() / ("hearth-run-terminal-" + std::to_string(getpid()) + ".gguf");
    ASSERT_EQ(hearth::testing::run_command(std::string(HEARTH_BINARY) + " make-test-model --preset tiny -o " +
                                           model.string() + " 2>&1")
                  .exit_code,
              0);
    int fd = -1;
    const pid_t pid = forkpty(&fd, nullptr, nullptr, nullptr);
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        // -n -1 and a 4096-token context: random weights would talk for a long time.
        execl(HEARTH_BINARY, "hearth", "run", "-m", model.c_str(), "-t", "1", "-n", "-1", static_cast<char*>(nullptr));
        _exit(127);
    }
    std::string screen;
    read_terminal(fd, screen, 30, ">>> ");
    ASSERT_NE(screen.find(">>> "), std::string::npos) << "no prompt on a terminal:\n" << screen;
    const std::string question = "tell me a long story\r";
    ASSERT_EQ(write(fd, question.data(), question.size()), static_cast<ssize_t>(question.size()));
    read_terminal(fd, screen, 1.5);
    const size_t streamed = screen.size();
    ASSERT_EQ(write(fd, "\x03", 1), 1);  // Ctrl-C: the terminal sends SIGINT
    read_terminal(fd, screen, 10, "(stopped)");
    EXPECT_NE(screen.find("(stopped)"), std::string::npos) << screen.substr(streamed);
    read_terminal(fd, screen, 5, ">>> ");  // a new prompt: the chat goes on
    EXPECT_NE(screen.rfind(">>> "), screen.find(">>> ")) << screen.substr(streamed);
    ASSERT_EQ(write(fd, "/bye\r", 5), 5);
    read_terminal(fd, screen, 5);
    int status = 0;
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (waitpid(pid, &status, WNOHANG) == 0 && Clock::now() < deadline) usleep(50'000);
    if (Clock::now() >= deadline) kill(pid, SIGKILL), waitpid(pid, &status, 0);
    close(fd);
    fs::remove(model);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status << "\n" << screen;
}

}  // namespace
