// child_watchdog.hpp - run_in_child: run a test body in a forked child under a watchdog, so that a hang
// (a range left open, exit waiting for it) fails the test within seconds instead of hanging it.
//
// The child's exit status is body's result: 0 passed (the child then calls exit(), so umn's release at
// exit must complete too); any other value is the number of the check that failed, and the child _exits
// at once. The parent fails the test if the child does not end within `seconds`, dies of a signal, or
// exits non-zero. Context: a gtest test body (uses ASSERT/FAIL); fork() from the test's thread.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include <gtest/gtest.h>

namespace umn::test {

template <typename Body>
void run_in_child(Body body, int seconds = 20) {
  fflush(nullptr);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const int failed = body();
    if (failed != 0) _exit(failed);
    exit(0);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  int status = 0;
  pid_t done = 0;
  while ((done = waitpid(child, &status, WNOHANG)) == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  if (done == 0) {
    kill(child, SIGKILL);
    waitpid(child, &status, 0);
    FAIL() << "the child hung (watchdog, " << seconds << " s)";
  }
  ASSERT_TRUE(WIFEXITED(status)) << "child killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0) << "child check " << WEXITSTATUS(status) << " failed";
}

}  // namespace umn::test
