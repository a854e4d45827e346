#pragma once
// Shared by the libactor and CAF benchmark programs: argument parsing, JSON
// result lines, and process measurements. Both programs print exactly one
// JSON object per result line on stdout; diagnostics go to stderr.

#include <poll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace bench {

using clock_type = std::chrono::steady_clock;

inline std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch())
      .count();
}

/// Exits at once: a failed check inside an actor must not wait for a clean
/// shutdown that may never come.
[[noreturn]] inline void fail(const std::string& program, const std::string& msg) {
  std::cerr << program << ": " << msg << std::endl;
  std::cout.flush();
  std::_Exit(1);
}

/// key=value arguments after the scenario name.
class args {
 public:
  args(std::string program, int argc, char** argv) : program_(std::move(program)) {
    for (int i = 2; i < argc; ++i) {
      std::string kv = argv[i];
      auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) {
        fail(program_, "malformed argument '" + kv + "' (expected key=value)");
      }
      values_[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
  }

  std::uint64_t get(const std::string& key, std::uint64_t fallback) {
    auto i = values_.find(key);
    if (i == values_.end()) return fallback;
    const std::string& str = i->second;
    char* end = nullptr;
    errno = 0;
    auto res = std::strtoull(str.c_str(), &end, 10);
    if (str.empty() || *end != '\0' || errno != 0 || str[0] == '-') {
      fail(program_, "invalid value for '" + key + "': '" + str + "'");
    }
    used_.push_back(key);
    return res;
  }

  void check_unused() const {
    for (auto& kv : values_) {
      if (std::find(used_.begin(), used_.end(), kv.first) == used_.end()) {
        fail(program_, "unknown parameter '" + kv.first + "'");
      }
    }
  }

 private:
  std::string program_;
  std::map<std::string, std::string> values_;
  std::vector<std::string> used_;
};

using param_list = std::vector<std::pair<std::string, std::uint64_t>>;

inline void emit(const std::string& framework, const std::string& scenario,
                 const param_list& params, double value, const std::string& unit) {
  std::ostringstream out;
  out.precision(10);
  out << "{\"framework\":\"" << framework << "\",\"scenario\":\"" << scenario << "\",\"params\":{";
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (i > 0) out << ',';
    out << '"' << params[i].first << "\":" << params[i].second;
  }
  out << "},\"value\":" << value << ",\"unit\":\"" << unit << "\"}\n";
  std::cout << out.str() << std::flush;
}

/// Resident set size in bytes, or -1 when /proc is unavailable.
inline std::int64_t rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, 6, "VmRSS:") == 0) {
      std::istringstream fields(line.substr(6));
      std::int64_t kb = 0;
      fields >> kb;
      return kb * 1024;
    }
  }
  return -1;
}

/// User + system CPU time of this process, in seconds.
inline double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto tv = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

/// Sum of (i & 0xFF) for i in [0, n): the checksum a mailbox receiver verifies.
inline std::uint64_t expected_sum(std::uint64_t n) {
  return (n / 256) * (255 * 256 / 2) + (n % 256) * (n % 256 - 1) / 2;
}

inline constexpr std::uint64_t chunk_size = 1000;

// --- two processes ---------------------------------------------------------

/// The remote scenarios run a server in a child process and the measuring
/// client in this one, both forked from the same binary before either starts
/// a thread. The server calls `publish(port)` once it listens, then
/// `wait_for_stop()`, which returns when the client is done.
struct server_ctl {
  int to_parent;
  int from_parent;
  void publish(std::uint16_t port) const {
    if (::write(to_parent, &port, sizeof port) != static_cast<ssize_t>(sizeof port)) {
      std::_Exit(3);
    }
  }
  void wait_for_stop() const {
    char c = 0;
    while (::read(from_parent, &c, 1) > 0) {
    }
  }
};

/// Runs `server(server_ctl)` in a child process and `client(port)` here.
/// Fails when the child does not publish within a minute or exits non-zero.
template <class Server, class Client>
void run_two_processes(const std::string& program, Server server, Client client) {
  int up[2];
  int down[2];
  if (::pipe(up) != 0 || ::pipe(down) != 0) fail(program, "pipe() failed");
  std::cout.flush();
  const pid_t pid = ::fork();
  if (pid < 0) fail(program, "fork() failed");
  if (pid == 0) {
    ::close(up[0]);
    ::close(down[1]);
    server(server_ctl{up[1], down[0]});
    std::cout.flush();
    std::_Exit(0);
  }
  ::close(up[1]);
  ::close(down[0]);
  std::uint16_t port = 0;
  pollfd p{up[0], POLLIN, 0};
  if (::poll(&p, 1, 60000) != 1 || ::read(up[0], &port, sizeof port) != sizeof port) {
    fail(program, "the server process did not start");
  }
  client(port);
  ::close(down[1]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(up[0]);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fail(program, "the server process failed (status " + std::to_string(status) + ")");
  }
}

/// Remote scenario defaults, shared by all three programs.
inline constexpr std::uint64_t remote_messages = 2'000'000;
inline constexpr std::uint64_t remote_rounds = 20'000;
/// The receiver acknowledges every ack_every messages; the sender keeps at
/// most `window` unacknowledged (libactor and CAF alike).
inline constexpr std::uint64_t ack_every = 65'536;
inline constexpr std::uint64_t window = 1'048'576;

inline void usage(const char* program) {
  std::cerr << "usage: " << program << " SCENARIO [key=value ...]\n"
            << "  mailbox  senders=1 messages=2000000\n"
               "  pingpong rounds=200000\n"
               "  spawn    actors=1000000\n"
               "  idle     actors=1000 seconds=2\n"
               "  remote-throughput messages=2000000 (two processes, loopback)\n"
               "  remote-pingpong   rounds=20000     (two processes, loopback)\n"
               "  all scenarios accept workers=N (default: hardware concurrency)\n";
}

}  // namespace bench
