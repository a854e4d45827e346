#pragma once
// The WebSocket protocol's JSON: flat objects whose values are strings,
// e.g. {"type":"post","room":"general","text":"hi"}. Parsing accepts exactly
// that (anything else is an error with a reason); emitting escapes what
// JSON requires.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace chat::json {

using object = std::map<std::string, std::string>;

inline void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

class parser {
 public:
  explicit parser(std::string_view in) : s_(in) {}

  /// The object, or nothing with error() saying why.
  std::optional<object> parse() {
    object o;
    ws();
    if (!eat('{')) return fail("expected '{'");
    ws();
    if (eat('}')) return end(std::move(o));
    while (true) {
      ws();
      auto k = str();
      if (!k) return std::nullopt;
      ws();
      if (!eat(':')) return fail("expected ':'");
      ws();
      auto v = str();
      if (!v) return std::nullopt;
      if (o.size() >= 16) return fail("too many fields");
      o[*k] = std::move(*v);
      ws();
      if (eat(',')) continue;
      if (eat('}')) return end(std::move(o));
      return fail("expected ',' or '}'");
    }
  }
  [[nodiscard]] const std::string& error() const { return err_; }

 private:
  std::optional<object> end(object o) {
    ws();
    if (i_ != s_.size()) return fail("trailing characters");
    return o;
  }
  std::nullopt_t fail(std::string why) {
    if (err_.empty()) err_ = std::move(why) + " at offset " + std::to_string(i_);
    return std::nullopt;
  }
  void ws() {
    while (i_ < s_.size() &&
           (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) {
      ++i_;
    }
  }
  bool eat(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  std::optional<std::uint32_t> hex4() {
    if (s_.size() - i_ < 4) return std::nullopt;
    std::uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[i_++];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= static_cast<std::uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        v |= static_cast<std::uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        v |= static_cast<std::uint32_t>(c - 'A' + 10);
      } else {
        return std::nullopt;
      }
    }
    return v;
  }
  std::optional<std::string> str() {
    if (!eat('"')) return fail("expected a string (only string values are accepted)");
    std::string out;
    while (true) {
      if (i_ >= s_.size()) return fail("unterminated string");
      const char c = s_[i_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) return fail("control character in a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) return fail("unterminated escape");
      const char e = s_[i_++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          auto cp = hex4();
          if (!cp) return fail("bad \\u escape");
          if (*cp >= 0xd800 && *cp < 0xdc00) {
            // A high surrogate must be followed by a low one.
            if (!eat('\\') || !eat('u')) return fail("unpaired surrogate");
            auto lo = hex4();
            if (!lo || *lo < 0xdc00 || *lo >= 0xe000) return fail("unpaired surrogate");
            *cp = 0x10000 + ((*cp - 0xd800) << 10) + (*lo - 0xdc00);
          } else if (*cp >= 0xdc00 && *cp < 0xe000) {
            return fail("unpaired surrogate");
          }
          append_utf8(out, *cp);
          break;
        }
        default:
          return fail("bad escape");
      }
    }
  }

  std::string_view s_;
  std::size_t i_ = 0;
  std::string err_;
};

inline std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          static const char* hex = "0123456789abcdef";
          out += "\\u00";
          out += hex[(c >> 4) & 0xf];
          out += hex[c & 0xf];
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

/// {"k":"v",...} from pairs, in the given order.
inline std::string emit(std::initializer_list<std::pair<std::string_view, std::string_view>> kv) {
  std::string out = "{";
  bool first = true;
  for (auto& [k, v] : kv) {
    if (!first) out += ',';
    first = false;
    out += quote(k);
    out += ':';
    out += quote(v);
  }
  return out + "}";
}

}  // namespace chat::json
