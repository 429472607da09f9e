#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace cachegate::testing {

// A child process started with fork/exec. Its stdout and stderr go to `log_path` (when given) so a
// failing test can show what the server said. The destructor stops it (SIGTERM, then SIGKILL
// after a grace period) and reaps it, so no test leaves servers behind.
class ChildProcess {
 public:
  ChildProcess() = default;
  ChildProcess(std::vector<std::string> argv, std::string log_path = {});
  ~ChildProcess();
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  // Sends `signal` without waiting.
  void signal(int signal);
  // SIGTERM, wait up to `grace`, then SIGKILL; returns the exit status as from waitpid.
  int stop(std::chrono::milliseconds grace = std::chrono::milliseconds(3000));
  // Waits for the process to exit on its own; returns its exit code, or -1 on timeout/signal.
  int wait_exit(std::chrono::milliseconds timeout);
  // The captured output so far (empty when not captured).
  std::string output() const;

 private:
  pid_t pid_ = -1;
  int status_ = 0;
  std::string log_path_;
};

// The cachegate the tests run: $CACHEGATE_TEST_BINARY when set (the test run points the
// integration tests at build-sanitize/'s cachegate that way), else the one built beside them.
const char* cachegate_binary();
#define CACHEGATE_BINARY ::cachegate::testing::cachegate_binary()

// Whether that cachegate is built with AddressSanitizer: $CACHEGATE_TEST_SANITIZED=1, or these
// tests are. Its allocator pads every block and holds freed ones in quarantine, so there a
// process's resident size no longer says what cachegate itself holds: bounds on it are checked
// against the plain build only.
bool cachegate_sanitized();

// Runs a command to completion, capturing stdout+stderr; returns the exit code (-1 on signal).
int run_command(const std::vector<std::string>& argv, std::string* output,
                std::chrono::milliseconds timeout = std::chrono::milliseconds(30000));

}  // namespace cachegate::testing
