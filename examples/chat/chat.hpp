#pragma once
// The chat service: messages, and the server's actors.
//
//   client --connect_user--> lobby: spawns a session, returns its handle
//   client --join/leave/post/list--> session --> room (one actor per room)
//   room --chat_event--> every member's session --> its client
//
// A client is any actor that takes chat_event: a terminal client's printer
// in another process (a remote handle), or a WebSocket bridge in the server.
// A session monitors its client and stops when the client goes away (its
// process died, its WebSocket closed); rooms monitor sessions and tell the
// other members that the user left.

#include <libactor/net/node.hpp>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace chat {

using libactor::actor;
using libactor::actor_ref;
using libactor::behavior;

enum class event_kind : std::uint8_t { message, joined, left, error };
LIBACTOR_WIRE_ENUM(event_kind, event_kind::message, event_kind::error)

/// What a client is told.
struct chat_event {
  event_kind kind = event_kind::message;
  std::string room;
  std::string user;
  std::string text;  ///< The message, or why (error, left).
};
LIBACTOR_WIRE_TYPE(chat_event, "chat.event", kind, room, user, text)

/// Asked of the lobby: answered with the user's session handle.
struct connect_user {
  std::string name;
  actor_ref client;  ///< Receives chat_event.
};
LIBACTOR_WIRE_TYPE(connect_user, "chat.connect", name, client)

struct join_room {
  std::string room;
};
LIBACTOR_WIRE_TYPE(join_room, "chat.join", room)

struct leave_room {
  std::string room;
};
LIBACTOR_WIRE_TYPE(leave_room, "chat.leave", room)

struct post {
  std::string room;
  std::string text;
};
LIBACTOR_WIRE_TYPE(post, "chat.post", room, text)

/// Asked of a session: answered with room names and member counts.
struct list_rooms {};
LIBACTOR_WIRE_TYPE(list_rooms, "chat.list")

struct room_info {
  std::string name;
  std::uint64_t members = 0;
};
LIBACTOR_WIRE_TYPE(room_info, "chat.room_info", name, members)

struct room_list {
  std::vector<room_info> rooms;
};
LIBACTOR_WIRE_TYPE(room_list, "chat.room_list", rooms)

/// Room names, user names and texts are limited; longer ones are refused.
inline constexpr std::size_t max_name = 32;
inline constexpr std::size_t max_text = 2000;

inline std::string check_name(const std::string& what, const std::string& s) {
  if (s.empty() || s.size() > max_name) {
    return what + " must be 1 to " + std::to_string(max_name) + " bytes";
  }
  for (unsigned char c : s) {
    if (c < 0x21 || c == 0x7f) return what + " must not contain spaces or control characters";
  }
  return {};
}

// --- server side (local messages between the server's actors) -----------------

struct member_join {
  actor_ref session;
  std::string user;
};
struct member_leave {
  actor_ref session;
};
struct member_post {
  actor_ref session;
  std::string text;
};
struct room_count_request {};

/// One room: its members in join order; every post goes to each of them in
/// the order the room received it.
class room : public actor {
 public:
  explicit room(std::string name) : name_(std::move(name)) {}

 protected:
  behavior make_behavior() override {
    return {
        [this](const member_join& j) {
          if (members_.contains(j.session)) return;
          monitor(j.session);
          members_.emplace(j.session, j.user);
          order_.push_back(j.session);
          broadcast(chat_event{event_kind::joined, name_, j.user, {}});
        },
        [this](const member_leave& l) { remove(l.session, "left"); },
        [this](const libactor::down_msg& d) { remove(d.source, "disconnected"); },
        [this](const member_post& p) {
          auto it = members_.find(p.session);
          if (it == members_.end()) {
            p.session.send(chat_event{event_kind::error, name_, {}, "not a member of " + name_});
            return;
          }
          broadcast(chat_event{event_kind::message, name_, it->second, p.text});
        },
        [this](room_count_request) { return static_cast<std::uint64_t>(members_.size()); },
    };
  }

 private:
  void remove(const actor_ref& s, const std::string& why) {
    auto it = members_.find(s);
    if (it == members_.end()) return;
    const std::string user = it->second;
    members_.erase(it);
    std::erase(order_, s);
    demonitor(s);
    broadcast(chat_event{event_kind::left, name_, user, why});
  }
  void broadcast(const chat_event& e) {
    for (auto& m : order_) m.send(e);
  }

  std::string name_;
  std::map<actor_ref, std::string> members_;
  std::vector<actor_ref> order_;
};

/// The lobby, registered as "lobby": creates rooms on first join and a
/// session per connected user.
class lobby;

/// A user's session on the server: validates and routes the user's
/// requests, forwards room events to the client, and stops when the client
/// goes away (its rooms see it leave).
class session : public actor {
 public:
  session(std::string user, actor_ref client, actor_ref lobby)
      : user_(std::move(user)), client_(std::move(client)), lobby_(std::move(lobby)) {}

 protected:
  behavior make_behavior() override;

 private:
  std::string user_;
  actor_ref client_;
  actor_ref lobby_;
  std::map<std::string, actor_ref> rooms_;
};

/// Local message from a session to the lobby: the room named `name`.
struct room_request {
  std::string name;
};

class lobby : public actor {
 protected:
  behavior make_behavior() override {
    return {
        [this](const connect_user& c) -> actor_ref {
          if (auto why = check_name("a user name", c.name); !why.empty() || !c.client) {
            return {};
          }
          return spawn<session>(c.name, c.client, self());
        },
        [this](const room_request& r) -> actor_ref {
          auto& room_ref = rooms_[r.name];
          if (!room_ref) room_ref = spawn<room>(r.name);
          return room_ref;
        },
        [this](list_rooms) -> libactor::task<room_list> {
          room_list out;
          auto rooms = rooms_;  // the map may change while this task waits
          for (auto& [name, r] : rooms) {
            auto n = co_await ask<std::uint64_t>(r, room_count_request{}, std::chrono::seconds(5));
            out.rooms.push_back(room_info{name, n ? *n : 0});
          }
          co_return out;
        },
    };
  }

 private:
  std::map<std::string, actor_ref> rooms_;
};

inline behavior session::make_behavior() {
  monitor(client_);
  auto error = [this](const std::string& room, std::string text) {
    client_.send(chat_event{event_kind::error, room, user_, std::move(text)});
  };
  return {
      [this, error](join_room j) -> libactor::task<void> {
        if (auto why = check_name("a room name", j.room); !why.empty()) {
          error(j.room, why);
          co_return;
        }
        if (rooms_.contains(j.room)) co_return;
        room_request q{j.room};
        auto r = co_await ask<actor_ref>(lobby_, std::move(q), std::chrono::seconds(5));
        if (!r || !*r) {
          error(j.room, "cannot open room " + j.room);
          co_return;
        }
        rooms_[j.room] = *r;
        r->send(member_join{self(), user_});
      },
      [this, error](const leave_room& l) {
        auto it = rooms_.find(l.room);
        if (it == rooms_.end()) {
          error(l.room, "not in room " + l.room);
          return;
        }
        it->second.send(member_leave{self()});
        rooms_.erase(it);
      },
      [this, error](const post& p) {
        auto it = rooms_.find(p.room);
        if (it == rooms_.end()) {
          error(p.room, "join " + p.room + " before posting to it");
          return;
        }
        if (p.text.empty() || p.text.size() > max_text) {
          error(p.room, "a message must be 1 to " + std::to_string(max_text) + " bytes");
          return;
        }
        it->second.send(member_post{self(), p.text});
      },
      [this](list_rooms) -> libactor::task<room_list> {
        auto r = co_await ask<room_list>(lobby_, list_rooms{}, std::chrono::seconds(5));
        co_return r ? *r : room_list{};
      },
      [this](const chat_event& e) { client_.send(e); },
      [this](const libactor::down_msg&) {
        // The client is gone: stopping makes every room drop this member.
        quit();
      },
  };
}

}  // namespace chat
