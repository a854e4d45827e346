#pragma once
// Command-line helpers shared by the example programs: --flag value parsing
// with clear errors, and reading the cluster secret from a file.

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <libactor/net/secret.hpp>

namespace examples {

/// `--name value` pairs (repeatable flags keep every value) after a mode word.
class flags {
 public:
  flags(std::string program, int argc, char** argv, int first) : program_(std::move(program)) {
    for (int i = first; i < argc; ++i) {
      std::string a = argv[i];
      if (a.rfind("--", 0) != 0) die("unexpected argument \"" + a + "\"");
      // A flag followed by another flag (or by nothing) is a switch.
      if (i + 1 >= argc || std::string(argv[i + 1]).rfind("--", 0) == 0) {
        values_[a.substr(2)].push_back("");
        continue;
      }
      values_[a.substr(2)].push_back(argv[++i]);
    }
  }

  /// True when the flag (a switch, or one with a value) was given.
  bool has(const std::string& name) {
    used_.push_back(name);
    return values_.count(name) != 0;
  }

  std::string text(const std::string& name, const std::string& fallback) {
    used_.push_back(name);
    auto it = values_.find(name);
    return it == values_.end() ? fallback : it->second.back();
  }
  std::vector<std::string> all(const std::string& name) {
    used_.push_back(name);
    auto it = values_.find(name);
    return it == values_.end() ? std::vector<std::string>{} : it->second;
  }
  long number(const std::string& name, long fallback, long lo, long hi) {
    used_.push_back(name);
    auto it = values_.find(name);
    if (it == values_.end()) return fallback;
    return parse_number("--" + name, it->second.back(), lo, hi);
  }
  /// A flag that needs a value.
  std::string required(const std::string& name) {
    const std::string v = text(name, "");
    if (v.empty()) die("--" + name + " is required");
    return v;
  }
  /// Fails on flags nobody asked for.
  void check_unused() {
    for (auto& [k, v] : values_) {
      bool used = k == "help";
      for (auto& u : used_) used = used || u == k;
      if (!used) die("unknown flag --" + k);
    }
  }

  [[noreturn]] void die(const std::string& msg) const {
    std::fprintf(stderr, "%s: %s\n(try --help)\n", program_.c_str(), msg.c_str());
    std::exit(2);
  }

  long parse_number(const std::string& what, const std::string& v, long lo, long hi) const {
    char* end = nullptr;
    errno = 0;
    const long n = std::strtol(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || errno != 0 || n < lo || n > hi) {
      die(what + " wants a number from " + std::to_string(lo) + " to " + std::to_string(hi) +
          ", got \"" + v + "\"");
    }
    return n;
  }

  /// "host:port" into its parts.
  std::pair<std::string, std::uint16_t> endpoint(const std::string& what,
                                                 const std::string& v) const {
    const auto colon = v.rfind(':');
    if (colon == std::string::npos) die(what + " wants HOST:PORT, got \"" + v + "\"");
    return {v.substr(0, colon),
            static_cast<std::uint16_t>(parse_number(what, v.substr(colon + 1), 1, 65535))};
  }

  /// The cluster secret from the file named by --secret-file (one trailing
  /// newline ignored; an empty, unreadable or weak secret is an error).
  /// The secret in --secret-file; with `optional`, "" when the flag is absent.
  std::string secret(bool optional = false) {
    const std::string path = text("secret-file", "");
    if (path.empty() && optional) return {};
    if (path.empty()) die("--secret-file is required");
    std::ifstream in(path, std::ios::binary);
    if (!in) die("cannot read the secret file " + path);
    std::ostringstream ss;
    ss << in.rdbuf();
    std::string s = ss.str();
    if (!s.empty() && s.back() == '\n') s.pop_back();
    if (s.empty()) die("the secret file " + path + " is empty");
    if (libactor::net::secret_bits(s) < libactor::net::min_secret_bits) {
      die("the secret in " + path + " can hold at most " +
          std::to_string(static_cast<int>(libactor::net::secret_bits(s))) +
          " bits of entropy; at least 128 are needed (`libactor-node --gen-secret > " + path +
          "` writes one)");
    }
    return s;
  }

 private:
  std::string program_;
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> used_;
};

}  // namespace examples
