#pragma once
// Child processes for the multi-process examples: start a program with
// arguments, read the lines it prints with a deadline, stop or kill it.

#include <fcntl.h>
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
  /// Starts `program` with `args`; its stdout is read through line(). With
  /// `with_stdin`, write_line() feeds its standard input.
  child_process(const std::string& program, const std::vector<std::string>& args,
                bool with_stdin = false) {
    int out[2];
    int in[2] = {-1, -1};
    // Close-on-exec: another child started later must not inherit these
    // ends (an inherited stdin writer would keep this child from seeing the
    // end of its input). dup2 in the child clears the flag on 0 and 1.
    if (::pipe2(out, O_CLOEXEC) != 0) return;
    if (with_stdin && ::pipe2(in, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      ::close(out[0]);
      ::close(out[1]);
      if (with_stdin) {
        ::dup2(in[0], 0);
        ::close(in[0]);
        ::close(in[1]);
      }
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
    if (with_stdin) {
      ::close(in[0]);
      in_ = in[1];
    }
  }
  ~child_process() {
    close_stdin();
    stop(SIGTERM);
    if (out_ >= 0) ::close(out_);
  }

  /// Writes `text` and a newline to the child's standard input.
  bool write_line(const std::string& text) {
    if (in_ < 0) return false;
    const std::string l = text + "\n";
    std::size_t off = 0;
    while (off < l.size()) {
      const auto n = ::write(in_, l.data() + off, l.size() - off);
      if (n <= 0) return false;
      off += static_cast<std::size_t>(n);
    }
    return true;
  }
  /// End of input for the child.
  void close_stdin() {
    if (in_ >= 0) ::close(in_);
    in_ = -1;
  }
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  [[nodiscard]] bool started() const { return pid_ > 0 && out_ >= 0; }
  [[nodiscard]] pid_t pid() const { return pid_; }
  /// Every line read so far, for diagnostics.
  [[nodiscard]] const std::string& transcript() const { return transcript_; }

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
      if (c == '\n') {
        transcript_ += s + "\n";
        return s;
      }
      s += c;
    }
  }

  /// The next line that contains `needle`, skipping others; nothing when
  /// the deadline passes first.
  std::optional<std::string> line_with(const std::string& needle,
                                       std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      auto l = line(left);
      if (!l) return std::nullopt;
      if (l->find(needle) != std::string::npos) return l;
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
  int in_ = -1;
  std::string transcript_;
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
