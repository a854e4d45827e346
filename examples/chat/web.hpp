#pragma once
// The chat server's web side (Boost.Beast): GET / serves the page, /ws is
// the WebSocket endpoint. Each WebSocket connection gets a bridge actor that
// speaks the chat protocol for it (it connects a user through the lobby and
// holds the user's session); the connection object only moves text frames.
//
// WebSocket messages (JSON objects of strings):
//   browser -> server  {"type":"hello","name":N}  {"type":"join","room":R}
//                      {"type":"leave","room":R}  {"type":"post","room":R,"text":T}
//                      {"type":"rooms"}
//   server -> browser  {"type":"welcome","name":N}
//                      {"type":"message"|"joined"|"left"|"error","room":R,"user":U,"text":T}
//                      {"type":"rooms","list":"general (2), random (1)"}
// A malformed frame gets an "error" reply; the connection stays open.

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <deque>
#include <memory>
#include <thread>

#include "chat.hpp"
#include "json.hpp"
#include "page.hpp"

namespace chat {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

/// A command from the browser, parsed.
struct ws_command {
  json::object fields;
};
struct ws_closed {};

/// Speaks for one WebSocket connection: `write` sends a text frame to it
/// (from any thread).
class ws_bridge : public actor {
 public:
  ws_bridge(actor_ref lobby, std::function<void(std::string)> write)
      : lobby_(std::move(lobby)), write_(std::move(write)) {}

 protected:
  behavior make_behavior() override {
    return {
        [this](ws_command c) -> libactor::task<void> {
          auto& f = c.fields;
          const std::string type = f["type"];
          if (type == "hello") {
            if (session_) co_return error({}, "already connected as " + name_);
            connect_user q{f["name"], self()};
            auto s = co_await ask<actor_ref>(lobby_, std::move(q), std::chrono::seconds(5));
            if (!s || !*s)
              co_return error({}, "cannot connect as \"" + f["name"] + "\"" +
                                      (s ? "" : ": " + s.err().to_string()));
            session_ = *s;
            name_ = f["name"];
            write_(json::emit({{"type", "welcome"}, {"name", name_}}));
          } else if (!session_) {
            error({}, "say hello first");
          } else if (type == "join") {
            session_.send(join_room{f["room"]});
          } else if (type == "leave") {
            session_.send(leave_room{f["room"]});
          } else if (type == "post") {
            session_.send(post{f["room"], f["text"]});
          } else if (type == "rooms") {
            auto r = co_await ask<room_list>(session_, list_rooms{}, std::chrono::seconds(5));
            std::string list;
            if (r) {
              for (auto& i : r->rooms) {
                list +=
                    (list.empty() ? "" : ", ") + i.name + " (" + std::to_string(i.members) + ")";
              }
            }
            write_(json::emit({{"type", "rooms"}, {"list", list}}));
          } else {
            error({}, "unknown type \"" + type + "\"");
          }
        },
        [this](const chat_event& e) {
          static const char* kinds[] = {"message", "joined", "left", "error"};
          write_(json::emit({{"type", kinds[static_cast<int>(e.kind)]},
                             {"room", e.room},
                             {"user", e.user},
                             {"text", e.text}}));
        },
        [this](ws_closed) { quit(); },  // the session sees this client stop
    };
  }

 private:
  void error(const std::string& room, const std::string& text) {
    write_(json::emit({{"type", "error"}, {"room", room}, {"user", ""}, {"text", text}}));
  }

  actor_ref lobby_;
  std::function<void(std::string)> write_;
  actor_ref session_;
  std::string name_;
};

/// One WebSocket connection (runs on the web server's I/O thread).
class ws_connection : public std::enable_shared_from_this<ws_connection> {
 public:
  ws_connection(tcp::socket s, libactor::actor_system& sys, actor_ref lobby)
      : ws_(std::move(s)), sys_(sys), lobby_(std::move(lobby)) {}

  void start(http::request<http::string_body> req) {
    ws_.text(true);
    ws_.read_message_max(64 * 1024);
    ws_.async_accept(req, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return;
      std::weak_ptr<ws_connection> weak = self;
      auto exec = self->ws_.get_executor();
      self->bridge_ = self->sys_.spawn<ws_bridge>(self->lobby_, [weak, exec](std::string text) {
        asio::post(exec, [weak, text = std::move(text)]() mutable {
          if (auto c = weak.lock()) c->send(std::move(text));
        });
      });
      self->read();
    });
  }

 private:
  void read() {
    ws_.async_read(buf_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) {
        self->bridge_.send(ws_closed{});
        return;
      }
      const std::string text = beast::buffers_to_string(self->buf_.data());
      self->buf_.consume(self->buf_.size());
      json::parser p{text};
      if (auto o = p.parse()) {
        self->bridge_.send(ws_command{std::move(*o)});
      } else {
        self->send(json::emit({{"type", "error"},
                               {"room", ""},
                               {"user", ""},
                               {"text", "malformed message: " + p.error()}}));
      }
      self->read();
    });
  }

  void send(std::string text) {
    out_.push_back(std::move(text));
    if (out_.size() == 1) write_next();
  }
  void write_next() {
    ws_.async_write(asio::buffer(out_.front()),
                    [self = shared_from_this()](beast::error_code ec, std::size_t) {
                      if (ec) return;  // the read side sees the close
                      self->out_.pop_front();
                      if (!self->out_.empty()) self->write_next();
                    });
  }

  websocket::stream<beast::tcp_stream> ws_;
  libactor::actor_system& sys_;
  actor_ref lobby_;
  actor_ref bridge_;
  beast::flat_buffer buf_;
  std::deque<std::string> out_;
};

/// One HTTP connection: serves the page, or hands a WebSocket upgrade over.
class http_connection : public std::enable_shared_from_this<http_connection> {
 public:
  http_connection(tcp::socket s, libactor::actor_system& sys, actor_ref lobby)
      : stream_(std::move(s)), sys_(sys), lobby_(std::move(lobby)) {}

  void start() {
    stream_.expires_after(std::chrono::seconds(30));
    http::async_read(stream_, buf_, req_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       if (ec) return;
                       self->handle();
                     });
  }

 private:
  void handle() {
    if (websocket::is_upgrade(req_)) {
      if (req_.target() != "/ws")
        return reply(http::status::not_found, "text/plain", "not found\n");
      stream_.expires_never();
      std::make_shared<ws_connection>(stream_.release_socket(), sys_, lobby_)
          ->start(std::move(req_));
      return;
    }
    if (req_.method() != http::verb::get) {
      return reply(http::status::method_not_allowed, "text/plain", "GET only\n");
    }
    if (req_.target() == "/" || req_.target().starts_with("/?")) {
      return reply(http::status::ok, "text/html; charset=utf-8", page);
    }
    reply(http::status::not_found, "text/plain", "not found\n");
  }

  void reply(http::status st, const char* type, std::string_view body) {
    auto res = std::make_shared<http::response<http::string_body>>(st, req_.version());
    res->set(http::field::content_type, type);
    res->set(http::field::cache_control, "no-store");
    res->body() = std::string(body);
    res->keep_alive(false);
    res->prepare_payload();
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code, std::size_t) {
                        beast::error_code ec;
                        self->stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
                      });
  }

  beast::tcp_stream stream_;
  libactor::actor_system& sys_;
  actor_ref lobby_;
  beast::flat_buffer buf_;
  http::request<http::string_body> req_;
};

/// The web server: one I/O thread of its own.
class web_server {
 public:
  web_server(libactor::actor_system& sys, actor_ref lobby, const std::string& host,
             std::uint16_t port)
      : sys_(sys), lobby_(std::move(lobby)), acceptor_(ioc_) {
    const tcp::endpoint ep(asio::ip::make_address(host), port);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen();
    accept();
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~web_server() {
    asio::post(ioc_, [this] {
      beast::error_code ec;
      acceptor_.close(ec);
    });
    ioc_.stop();
    thread_.join();
  }
  [[nodiscard]] std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

 private:
  void accept() {
    acceptor_.async_accept([this](beast::error_code ec, tcp::socket s) {
      if (ec) return;
      std::make_shared<http_connection>(std::move(s), sys_, lobby_)->start();
      accept();
    });
  }

  libactor::actor_system& sys_;
  actor_ref lobby_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::thread thread_;
};

}  // namespace chat
