#pragma once
// What every multi-process example's main() does: pick a mode, stop cleanly
// on SIGINT/SIGTERM, and make a one-run cluster secret for its children.

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "cli.hpp"

namespace examples {

/// Blocks SIGINT and SIGTERM in this thread and every thread started later,
/// so that wait() below is the one place that takes them. Construct it
/// before the actor system starts its threads.
class stop_signals {
 public:
  stop_signals() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  }
  /// Returns when SIGINT or SIGTERM arrives.
  void wait() const {
    int sig = 0;
    sigwait(&set_, &sig);
  }

 private:
  sigset_t set_;
};

/// A random secret for one run, in a file only this user can read (created
/// exclusively, removed by the destructor), for the child processes.
class run_secret {
 public:
  explicit run_secret(const std::string& program)
      : path_("/tmp/" + program + "-secret-" + std::to_string(::getpid())) {
    secret_ = libactor::net::generate_secret();
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
    ok_ = fd >= 0 &&
          ::write(fd, secret_.data(), secret_.size()) == static_cast<ssize_t>(secret_.size());
    if (fd >= 0) ::close(fd);
  }
  ~run_secret() { forget(); }
  run_secret(const run_secret&) = delete;
  run_secret& operator=(const run_secret&) = delete;

  [[nodiscard]] bool ok() const { return ok_; }
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] const std::string& secret() const { return secret_; }
  /// Removes the file (once the children have read it).
  void forget() { ::unlink(path_.c_str()); }

 private:
  std::string path_;
  std::string secret_;
  bool ok_ = false;
};

using mode = std::pair<const char*, std::function<int(flags&)>>;

/// main() of a program with modes: `program MODE [--flags]`, --help.
inline int run_modes(const char* program, int argc, char** argv, const char* usage,
                     const std::vector<mode>& modes) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress lines appear as they happen
  const std::string m = argc > 1 ? argv[1] : "";
  if (m.empty() || m == "--help" || m == "-h") {
    std::fputs(usage, m.empty() ? stderr : stdout);
    return m.empty() ? 2 : 0;
  }
  flags f{std::string(program) + " " + m, argc, argv, 2};
  if (f.has("help")) {
    std::fputs(usage, stdout);
    return 0;
  }
  for (auto& [name, fn] : modes) {
    if (m == name) return fn(f);
  }
  std::fprintf(stderr, "%s: unknown mode \"%s\"\n%s", program, m.c_str(), usage);
  return 2;
}

}  // namespace examples
