#pragma once
// Child processes for the multi-process examples: start a program with
// arguments, read the lines it prints with a deadline, stop or kill it.

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace examples {

class child_process {
 public:
  /// Starts `program` with `args`; its stdout is read through line().
  child_process(const std::string& program, const std::vector<std::string>& args) {
    int out[2];
    if (::pipe(out) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      ::close(out[0]);
      ::close(out[1]);
      std::vector<std::string> all{program};
      all.insert(all.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (auto& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(program.c_str(), argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    out_ = out[0];
  }
  ~child_process() {
    stop(SIGTERM);
    if (out_ >= 0) ::close(out_);
  }
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  [[nodiscard]] bool started() const { return pid_ > 0 && out_ >= 0; }
  [[nodiscard]] pid_t pid() const { return pid_; }

  /// The next line printed, or nothing when the deadline passes or the
  /// child closed its output.
  std::optional<std::string> line(std::chrono::milliseconds timeout) {
    std::string s;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) != 1) return std::nullopt;
      char c = 0;
      if (::read(out_, &c, 1) != 1) return std::nullopt;
      if (c == '\n') return s;
      s += c;
    }
  }

  /// Sends `sig` and waits for the exit; returns the exit status (-1 if it
  /// had already been reaped).
  int stop(int sig) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, sig);
    return wait();
  }
  /// Waits for the exit without signalling.
  int wait() {
    if (pid_ <= 0) return -1;
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
};

/// This program's own path, for starting copies of it in another mode.
inline std::string self_path() {
  char buf[4096];
  const auto n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return {};
  buf[n] = '\0';
  return buf;
}

}  // namespace examples
