// The node: start and shutdown, handles on the wire, and the public facade.
// The mechanisms it ties together each have their own file (node_impl.hpp
// lists them); the design is in docs/architecture.md ("Network layer"), the
// bytes in docs/protocol.md.

#include <openssl/rand.h>
#include <algorithm>

#include <chrono>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include "libactor/detail/pool.hpp"
#include "libactor/net/secret.hpp"
#include "node_impl.hpp"
#include "protocol.hpp"

namespace libactor::net {
namespace detail {

std::string endpoint_text(const tcp::endpoint& ep) {
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

// Built-in message types: what replies and common one-field messages use.
bool register_builtin_messages() {
  std::apply(
      [](auto... t) { (register_message<decltype(t)>(builtin_message_name<decltype(t)>), ...); },
      builtin_message_types{});
  return true;
}

namespace {

/// A node's incarnation: the wall clock in microseconds when it starts, in
/// the high bits, and 12 random bits. Incarnations of one node name are
/// ordered by start time (peers refuse one older than the newest they have
/// seen, peer_machine.hpp): a restart must not set the clock back to before
/// the previous start. The random bits tell apart two processes started in
/// the same microsecond.
std::uint64_t new_incarnation() {
  std::uint16_t r = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&r), sizeof r) != 1) {
    throw std::runtime_error("libactor.net: no randomness for the node incarnation");
  }
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  return (static_cast<std::uint64_t>(us) << 12) | (r & 0xfffu);  // not 0: us > 0
}

/// What the limits on unauthenticated connections count by: an IPv4
/// address, or an IPv6 /64 (one host commonly holds a whole /64, so its
/// addresses are not separate sources).
std::string source_of(const asio::ip::address& a) {
  if (a.is_v6()) {
    const auto v6 = a.to_v6();
    if (v6.is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, v6).to_string();
    auto bytes = v6.to_bytes();
    std::fill(bytes.begin() + 8, bytes.end(), 0);
    return asio::ip::address_v6(bytes).to_string() + "/64";
  }
  return a.to_string();
}

void check_config(const node_config& cfg) {
  auto bad = [](const std::string& what) {
    throw std::invalid_argument("libactor.net: node_config." + what);
  };
  if (cfg.name.empty() || cfg.name.size() > 255) bad("name must be 1 to 255 bytes");
  if (cfg.tls.enabled() && (cfg.tls.ca_file.empty() || cfg.tls.certificate_file.empty() ||
                            cfg.tls.private_key_file.empty())) {
    bad("tls needs all of ca_file, certificate_file and private_key_file");
  }
  if (cfg.secret.empty() && !cfg.tls.enabled()) {
    bad("secret must not be empty (unless tls is configured)");
  }
  if (!cfg.secret.empty() && secret_bits(cfg.secret) < min_secret_bits) {
    bad("secret can hold at most " + std::to_string(static_cast<int>(secret_bits(cfg.secret))) +
        " bits of entropy (by the class of each character); at least 128 are needed: use 32 or "
        "more hex "
        "digits, or net::generate_secret() (libactor-node --gen-secret prints one)");
  }
  if (cfg.max_unknown_ids == 0) bad("max_unknown_ids must be at least 1");
  if (cfg.max_peers == 0) bad("max_peers must be at least 1");
  if (cfg.max_inbound_bytes < 1024) bad("max_inbound_bytes must be at least 1024");
  if (cfg.max_inbound_bytes_total < cfg.max_inbound_bytes) {
    bad("max_inbound_bytes_total must be at least max_inbound_bytes");
  }
  if (cfg.max_links_total < cfg.max_links_per_peer) {
    bad("max_links_total must be at least max_links_per_peer");
  }
  if (cfg.max_outbound_bytes_total < cfg.max_outbound_bytes) {
    bad("max_outbound_bytes_total must be at least max_outbound_bytes");
  }
  if (cfg.tls.enabled() && (cfg.tls.max_handshakes_per_second == 0 ||
                            cfg.tls.max_handshakes_per_second_per_address == 0)) {
    bad("tls.max_handshakes_per_second and max_handshakes_per_second_per_address must be at least "
        "1");
  }
  if (cfg.max_unauthenticated == 0 || cfg.max_unauthenticated_per_address == 0) {
    bad("max_unauthenticated and max_unauthenticated_per_address must be at least 1");
  }
  boost::system::error_code ec;
  asio::ip::make_address(cfg.host, ec);
  if (ec) bad("host must be a numeric IPv4 or IPv6 address, got \"" + cfg.host + "\"");
  if (cfg.max_frame_size < 256) bad("max_frame_size must be at least 256");
  if (cfg.message_limits.max_depth < 4) {
    bad("message_limits.max_depth must be at least 4, got " +
        std::to_string(cfg.message_limits.max_depth));
  }
  if (cfg.max_outbound_bytes < cfg.max_frame_size) {
    bad("max_outbound_bytes must be at least max_frame_size");
  }
  if (cfg.heartbeat_interval <= duration::zero()) bad("heartbeat_interval must be positive");
  if (cfg.heartbeat_timeout < 3 * cfg.heartbeat_interval) {
    bad("heartbeat_timeout must be at least three heartbeat_intervals (a peer is declared down "
        "only after several heartbeats in a row were missed)");
  }
  if (cfg.handshake_timeout <= duration::zero()) bad("handshake_timeout must be positive");
  if (cfg.forwarded_request_timeout <= duration::zero()) {
    bad("forwarded_request_timeout must be positive");
  }
  if (cfg.reconnect_min <= duration::zero() || cfg.reconnect_max < cfg.reconnect_min) {
    bad("reconnect_min must be positive and at most reconnect_max");
  }
}

}  // namespace

node_impl::node_impl(actor_system& sys, node_config cfg)
    : sys_(sys),
      cfg_((check_config(cfg), std::move(cfg))),
      incarnation_(new_incarnation()),
      acceptor_(io_) {
  [[maybe_unused]] static const bool builtins = register_builtin_messages();
  drain_ = core::ref_ptr<drain>(new drain(sys), false);
  if (cfg_.listen) {
    const tcp::endpoint ep(asio::ip::make_address(cfg_.host), cfg_.port);
    boost::system::error_code ec;
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      throw std::system_error(ec.value(), std::system_category(),
                              "libactor.net: cannot listen on " + endpoint_text(ep));
    }
    port_ = acceptor_.local_endpoint().port();
  }
}

node_impl::~node_impl() = default;

void node_impl::sweep_requests() {
  if (stopping_.load(std::memory_order_acquire)) return;
  sweep_ = std::make_shared<asio::steady_timer>(io_, cfg_.heartbeat_interval);
  sweep_->async_wait([this, self = shared_from_this()](boost::system::error_code ec) {
    if (ec) return;
    std::vector<core::ref_ptr<peer>> all;
    {
      std::lock_guard lock(peers_mu_);
      all.reserve(peers_.size());
      for (auto& [name, p] : peers_) all.push_back(p);
    }
    const auto now = std::chrono::steady_clock::now();
    for (auto& p : all) {
      // Released after the lock: an asker's or a watcher's last reference
      // may need it.
      std::vector<peer::request> expired;
      std::vector<actor_ref> stopped_watchers;
      std::vector<core::ref_ptr<remote_proxy>> held;
      {
        std::lock_guard lock(p->mu_);
        p->expire_requests(now, expired);
        p->prune_watchers(stopped_watchers);
        held.reserve(p->held_.size());
        for (auto* px : p->held_) {
          if (core::actor_access::try_add_ref(px)) held.emplace_back(px, false);
        }
      }
      // Proxies kept for watchers that have all stopped go (outside the
      // lock: one may be released for good).
      for (auto& px : held) px->release_if_unwatched();
    }
    // The thread running the I/O decodes into its own heap (a node's own
    // I/O thread never parks as workers do): what was freed there goes
    // back (at most once a second, above the heap's retained size).
    core::pool::flush_thread_cache();
    core::pool::trim_if_due();
    sweep_requests();
  });
}

void node_impl::start() {
  auto owner = shared_from_this();
  service_ = make_service();
  work_.emplace(io_.get_executor());
  asio::post(io_, [owner] { owner->sweep_requests(); });
  if (cfg_.listen) {
    struct acceptor_loop {
      std::shared_ptr<node_impl> n;
      void operator()() const {
        n->acceptor_.async_accept([n = n](boost::system::error_code ec, tcp::socket s) {
          if (ec) {
            if (ec != asio::error::operation_aborted &&
                !n->stopping_.load(std::memory_order_acquire)) {
              // Out of descriptors, most likely: try again in a while, not
              // at once (that would spin and flood the log).
              n->log("accept failed: " + ec.message() + "; retrying in 100 ms");
              auto t = std::make_shared<asio::steady_timer>(n->io_, std::chrono::milliseconds(100));
              t->async_wait([n, t](boost::system::error_code e) {
                if (!e && !n->stopping_.load(std::memory_order_acquire)) acceptor_loop{n}();
              });
            }
            return;
          }
          n->stats_.accepted.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
          boost::system::error_code aec;
          const auto from = s.remote_endpoint(aec);
          const std::string addr = aec ? std::string("(unknown)") : source_of(from.address());
          const conn_id id = n->next_conn();
          if (!n->admit(addr, id)) {
            s.close(aec);  // before any byte: no hello, no buffer
            acceptor_loop{n}();
            return;
          }
          auto c = std::make_shared<connection>(*n, std::move(s), id, false);
          c->unauthenticated_from_ = addr;
          n->conns_.emplace(id, c);
          c->start();
          acceptor_loop{n}();
        });
      }
    };
    asio::post(io_, acceptor_loop{owner});
  }
  // The system's workers run the I/O when they are idle (driver.hpp), with
  // the backstop for when none is (failure_detector.hpp). The system takes
  // one driver: a second node on the same system runs its I/O on a thread
  // of its own.
  driven_ = core::install_driver(sys_, &driver_);
  if (driven_) {
    backstop_.emplace(sys_, driver_, cfg_.heartbeat_interval / 4);
  } else {
    thread_ = std::thread([this] { io_.run(); });
  }
}

void node_impl::shutdown() {
  // acq_rel: later loads that see the flag also see the state before it.
  if (stopping_.exchange(true, std::memory_order_acq_rel)) return;
  // From here this thread runs the I/O (after the workers let go of it).
  if (backstop_) backstop_->stop();
  if (driven_) core::remove_driver(sys_, &driver_);
  asio::post(io_, [this] {
    boost::system::error_code ec;
    acceptor_.close(ec);
    std::vector<std::shared_ptr<connection>> all;
    for (auto& [id, c] : conns_) all.push_back(c);
    for (auto& c : all) c->say_goodbye();
    std::vector<core::ref_ptr<peer>> peers;
    {
      std::lock_guard lock(peers_mu_);
      for (auto& [name, p] : peers_) peers.push_back(p);
    }
    for (auto& p : peers) drive(p, [](peer_machine& m) { return m.stop(); });
    for (auto& c : all) c->close("this node is shutting down", false);
    for (auto& t : redials_) t->cancel();
    if (sweep_) sweep_->cancel();
    work_.reset();
  });
  if (thread_.joinable()) {
    thread_.join();
  } else {
    io_.run();
  }
  io_.restart();
  io_.poll();  // handlers posted by workers after the loop ended (they only release)
  std::vector<core::ref_ptr<peer>> all;
  {
    std::lock_guard lock(peers_mu_);
    for (auto& [name, p] : peers_) all.push_back(p);
    peers_.clear();
    evict_order_.clear();
  }
  for (auto& p : all) {
    std::vector<actor_ref> watchers;
    std::vector<waiter> waiters;
    {
      std::lock_guard lock(p->mu_);
      p->node_ = nullptr;
      // Handles held by users keep the peer; what it holds must not keep
      // them (a node watcher whose behavior holds a proxy is a cycle).
      watchers.swap(p->watchers_);
      waiters.swap(p->waiters_);
    }
    for (auto& w : waiters) w->set_value(error{errc::shutting_down, "the node shut down"});
  }
  // service_ itself stays: sends racing with this shutdown may still read it.
  sys_.stop(service_, exit_reason::normal());
  exports_.clear();
}

void node_impl::refuse(const peer& p, std::string_view rule, const std::string& text) {
  if (auto line = refusals_.record(p.name_, rule, text, std::chrono::steady_clock::now())) {
    log(*line);
  }
}

namespace {

/// Code points a log line must not carry as they are: C1 controls, and the
/// ones that reorder or break what a terminal or viewer shows (bidi
/// embeddings, overrides and isolates, marks, line and paragraph separators).
bool hides_text(std::uint32_t cp) {
  return (cp >= 0x80 && cp <= 0x9f) || cp == 0x061c || cp == 0x200e || cp == 0x200f ||
         (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/// The length of the well-formed UTF-8 sequence at `s[i]` and its code
/// point, or 0 when the bytes there are not one (RFC 3629: no overlong
/// forms, no surrogates, nothing past U+10FFFF).
std::size_t utf8_at(const std::string& s, std::size_t i, std::uint32_t& cp) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  std::size_t n = 0;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
    cp = c & 0x1fu;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    cp = c & 0x0fu;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    cp = c & 0x07u;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((b(k) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b(k) & 0x3fu);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
      (cp >= 0xd800 && cp <= 0xdfff)) {
    return 0;
  }
  return n;
}

}  // namespace

void node_impl::log(const std::string& line) {
  // Lines carry text from the wire (node names, peers' error texts): a
  // control character, or a byte that is not well-formed UTF-8, is written
  // as \xNN, and a code point that hides or reorders text as \u{NNNN}, so
  // that no peer can start a line of its own, move the terminal's cursor,
  // or make a line read otherwise than it is.
  static constexpr char hex[] = "0123456789abcdef";
  std::string text = "node " + cfg_.name + ": ";
  text.reserve(text.size() + line.size());
  for (std::size_t i = 0; i < line.size();) {
    const auto c = static_cast<unsigned char>(line[i]);
    if (c >= 0x20 && c < 0x7f) {
      text += line[i++];
      continue;
    }
    std::uint32_t cp = 0;
    const std::size_t n = c >= 0x80 ? utf8_at(line, i, cp) : 0;
    if (n != 0 && !hides_text(cp)) {
      text.append(line, i, n);
    } else if (n != 0) {
      text += "\\u{";
      for (int shift = 12; shift >= 0; shift -= 4) text += hex[(cp >> shift) & 15];
      text += '}';
    } else {
      text += "\\x";
      text += hex[c >> 4];
      text += hex[c & 15];
    }
    i += n != 0 ? n : 1;
  }
  if (cfg_.log) {
    try {
      cfg_.log(text);
    } catch (...) {
    }
  } else {
    core::runtime_log(sys_, log_level::warning, log_category::network, text);
  }
}

bool node_impl::admit(const std::string& addr, conn_id id) {
  const auto it = unauthenticated_by_addr_.find(addr);
  const std::size_t from_addr = it == unauthenticated_by_addr_.end() ? 0 : it->second.size();
  const char* limit = nullptr;
  if (tls_ && !tls_handshake_allowed(addr)) {
    limit = "tls.max_handshakes_per_second";
  } else if (from_addr >= cfg_.max_unauthenticated_per_address) {
    limit = "max_unauthenticated_per_address";
  } else if (unauthenticated_ >= cfg_.max_unauthenticated && !evict_unauthenticated(from_addr)) {
    limit = "max_unauthenticated";
  }
  if (limit != nullptr) {
    stats_.connections_refused.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
    if (auto line = refusals_.once(
            addr, limit,
            std::string("closed a connection from ") + addr +
                " before its handshake: " + std::to_string(unauthenticated_) +
                " connections are unauthenticated, " + std::to_string(from_addr) +
                " of them from this address (node_config::" + limit + "; logged once per address)",
            std::chrono::steady_clock::now(), false)) {
      log(*line);
    }
    return false;
  }
  unauthenticated_by_addr_[addr].push_back(id);
  ++unauthenticated_;
  return true;
}

bool node_impl::tls_handshake_allowed(const std::string& addr) {
  // A TLS handshake costs the acceptor's I/O thread about half a
  // millisecond of key exchange and signature, for a ClientHello its sender
  // can replay for free. The buckets bound that work: in all, and per
  // address so that one address cannot take the whole budget.
  const auto now = steady_clock::now();
  if (tls_by_addr_.size() >= 4096 && !tls_by_addr_.contains(addr)) {
    tls_by_addr_.clear();  // the overall bucket still holds
  }
  auto [it, fresh] = tls_by_addr_.try_emplace(
      addr, static_cast<double>(cfg_.tls.max_handshakes_per_second_per_address),
      static_cast<double>(cfg_.tls.max_handshakes_per_second_per_address));
  return it->second.take(now) && tls_all_.take(now);
}

bool node_impl::evict_unauthenticated(std::size_t newcomer_holds) {
  // The address holding the most; among equals, the one whose oldest
  // connection is oldest. At most max_unauthenticated entries, and only
  // when the cap is reached.
  const std::deque<conn_id>* heaviest = nullptr;
  for (const auto& [a, ids] : unauthenticated_by_addr_) {
    if (heaviest == nullptr || ids.size() > heaviest->size() ||
        (ids.size() == heaviest->size() && ids.front() < heaviest->front())) {
      heaviest = &ids;
    }
  }
  if (heaviest == nullptr || heaviest->size() <= newcomer_holds) return false;
  const auto victim = conns_.find(heaviest->front());
  if (victim == conns_.end()) return false;
  stats_.connections_evicted.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
  // close() calls admitted(), which frees the slot.
  victim->second->close(
      "closed before its handshake to make room for a connection from an "
      "address holding fewer (node_config::max_unauthenticated)",
      false);
  return unauthenticated_ < cfg_.max_unauthenticated;
}

void node_impl::admitted(connection& c) {
  if (c.unauthenticated_from_.empty()) return;
  auto it = unauthenticated_by_addr_.find(c.unauthenticated_from_);
  if (it != unauthenticated_by_addr_.end()) {
    auto& ids = it->second;
    ids.erase(std::remove(ids.begin(), ids.end(), c.id_), ids.end());
    if (ids.empty()) unauthenticated_by_addr_.erase(it);
  }
  --unauthenticated_;
  c.unauthenticated_from_.clear();
}

void node_impl::forget(connection* c) {
  auto it = conns_.find(c->id_);
  if (it != conns_.end() && it->second.get() == c) conns_.erase(it);
}

void node_impl::encode_handle(writer& w, const actor_ref& h) {
  actor* a = core::actor_access::get(h);
  if (a == nullptr) {
    w.fixed(std::uint8_t{0});
    return;
  }
  if (core::actor_access::is_proxy(a)) {
    if (auto* dp = dynamic_cast<dead_proxy*>(a)) {
      // A dead service or reply handle is no more addressable than a live one.
      if (dp->fields_.id == 0 || dp->fields_.incarnation == 0) {
        w.fixed(std::uint8_t{0});
      } else {
        write_handle(w, dp->fields_);
      }
      return;
    }
    auto* rp = dynamic_cast<remote_proxy*>(a);
    if (rp == nullptr || rp->role_ != remote_proxy::role::actor) {
      // Reply sinks and service handles are not addressable from elsewhere.
      w.fixed(std::uint8_t{0});
      return;
    }
    handle_fields f{rp->peer_->name_, rp->incarnation_, {}, 0, rp->remote_id_};
    {
      std::lock_guard lock(rp->peer_->mu_);
      f.host = rp->peer_->adv_host_;
      f.port = rp->peer_->adv_port_;
    }
    write_handle(w, f);
    return;
  }
  write_handle(w, handle_fields{cfg_.name, incarnation_, cfg_.host, port_, export_local(a)});
}

bool node_impl::decode_handle(reader& r, actor_ref& h) {
  std::optional<handle_fields> f;
  if (!read_handle(r, f)) return false;
  if (!f) {
    h = {};
    return true;
  }
  // A handle to anything but a live actor of this node stands for a proxy
  // made here: what it holds in memory counts toward the message's
  // decoded bytes (message_limits, and the inbound account), not only its
  // few encoded bytes.
  if ((f->node != cfg_.name || f->incarnation != incarnation_) &&
      !r.charge_outside(sizeof(remote_proxy) + f->node.size() + f->host.size())) {
    return false;
  }
  if (f->node == cfg_.name) {
    if (f->incarnation != incarnation_) {
      // An actor of this node's earlier (or another) process: gone, and it
      // must not come back as whichever actor now has its id.
      const std::string why = "actor of incarnation " + std::to_string(f->incarnation) +
                              " of node " + cfg_.name + ", which is now incarnation " +
                              std::to_string(incarnation_);
      h = actor_ref{core::ref_ptr<actor>(
          new dead_proxy(sys_, std::move(*f), errc::receiver_down, exit_reason::error(why)),
          false)};
      return true;
    }
    h = find_exported(f->id);  // empty when the actor is gone: sends are dead letters
    // The service is the node's own: local code never gets it from a
    // peer's message (a link to it, or a stop, would be the peer's doing).
    if (h == service_) h = {};
    return true;
  }
  auto p = get_peer(f->node, admission::named);
  if (!p) {
    const std::string why = "node " + f->node + " was not added: node " + cfg_.name +
                            " keeps state for " + std::to_string(cfg_.max_peers) +
                            " nodes, all in use (node_config::max_peers)";
    if (auto line = refusals_.once(f->node, "max_peers", why + " (logged once per node)",
                                   std::chrono::steady_clock::now(), true)) {
      log(*line);
    }
    h = actor_ref{core::ref_ptr<actor>(new dead_proxy(sys_, std::move(*f), errc::node_down,
                                                      exit_reason{exit_code::node_down, why}),
                                       false)};
    return true;
  }
  boost::system::error_code ec;
  const auto addr = asio::ip::make_address(f->host, ec);
  std::string not_dialled;
  if (!ec && f->port != 0) {
    const tcp::endpoint ep(addr, f->port);
    const std::string where = endpoint_text(ep);
    const bool allowed = dial_allow_.allows(addr);
    if (allowed && given_up_.recent(where, std::chrono::steady_clock::now())) {
      not_dialled = "node " + p->name_ + " at " + where + " is not dialled: node " + cfg_.name +
                    " gave up on that address, or on four ports of its host, less than a minute "
                    "ago (node_config::max_failed_dials)";
    } else if (allowed) {
      {
        // Given up at another address (or this one, a while ago): the handle
        // says where the node is now.
        std::lock_guard lock(p->mu_);
        if (p->machine_.given_up()) {
          p->machine_.rearm();
          p->dial_ = ep;
        }
      }
      want_connection(p, ep);
    } else {
      not_dialled = "node " + p->name_ + " at " + where + " is not dialled: node " + cfg_.name +
                    " dials only addresses in node_config::dial_allow";
      bool down = false;
      {
        std::lock_guard lock(p->mu_);
        down = p->machine_.current() == peer_machine::phase::down;
      }
      if (down) {
        if (auto line =
                refusals_.once(p->name_, "dial_allow", not_dialled + " (logged once per node)",
                               std::chrono::steady_clock::now(), true)) {
          log(*line);
        }
      }
    }
  }
  h = actor_ref{core::ref_ptr<actor>(proxy_for(*p, f->id, f->incarnation, remote_proxy::role::actor,
                                               &*f, not_dialled.empty() ? nullptr : &not_dialled),
                                     false)};
  return true;
}

}  // namespace detail

// --- node ---------------------------------------------------------------------------

node::node(actor_system& sys, node_config cfg)
    : impl_((sys.deterministic() ? throw std::invalid_argument(
                                       "libactor.net: a node needs an actor system with worker "
                                       "threads, not one in deterministic mode")
                                 : void(),
             std::make_shared<detail::node_impl>(sys, std::move(cfg)))) {
  impl_->start();
  libactor::detail::attach_layer(sys);
}

node::~node() {
  impl_->shutdown();
  libactor::detail::detach_layer(impl_->sys_);
}

const std::string& node::name() const noexcept {
  return impl_->cfg_.name;
}

std::uint16_t node::port() const noexcept {
  return impl_->port_;
}

handle_context* node::context() const noexcept {
  return impl_.get();
}

expected<std::string> node::connect(const std::string& host, std::uint16_t port, duration timeout) {
  boost::system::error_code ec;
  auto addr = detail::asio::ip::make_address(host, ec);
  if (ec) return error{errc::invalid_argument, "not a numeric IP address: " + host};
  const detail::tcp::endpoint ep(addr, port);
  const auto deadline = steady_clock::now() + timeout;
  duration backoff = impl_->cfg_.reconnect_min;
  error last{errc::timeout, "no attempt"};
  while (true) {
    auto w = std::make_shared<std::promise<expected<std::string>>>();
    auto f = w->get_future();
    impl_->dial({}, ep, w, impl_->next_conn());
    if (f.wait_until(deadline) != std::future_status::ready) {
      return error{errc::timeout, "no handshake with " + host + ":" + std::to_string(port) +
                                      " before the timeout (last: " + last.to_string() + ")"};
    }
    auto r = f.get();
    if (r) return r;
    last = r.err();
    if (last.code == errc::invalid_argument || last.code == errc::shutting_down) return last;
    const auto now = steady_clock::now();
    if (now >= deadline) {
      return error{errc::timeout, "could not connect to " + host + ":" + std::to_string(port) +
                                      " before the timeout: " + last.to_string()};
    }
    // The last wait ends at the deadline, and one more attempt is made
    // there: a peer that comes up late within the timeout is still found.
    std::this_thread::sleep_for(std::min<duration>(backoff, deadline - now));  // retry delay
    backoff = std::min(backoff * 2, impl_->cfg_.reconnect_max);
  }
}

expected<void> node::await_peer(std::string_view peer, duration timeout) {
  auto& n = *impl_;
  const std::string name(peer);
  auto is_up = [&] {
    auto it = n.peers_.find(name);
    if (it == n.peers_.end()) return false;
    std::lock_guard plock(it->second->mu_);
    return it->second->machine_.current() == detail::peer_machine::phase::up;
  };
  std::unique_lock lock(n.peers_mu_);
  if (!n.peer_up_.wait_for(lock, timeout, is_up)) {
    return error{errc::timeout, "node " + name + " did not connect within the timeout"};
  }
  return {};
}

actor_ref node::service(std::string_view peer) {
  auto p = impl_->find_peer(peer);
  if (!p) return {};
  return actor_ref{detail::core::ref_ptr<actor>(
      impl_->proxy_for(*p, 0, 0, detail::remote_proxy::role::service), false)};
}

expected<actor_ref> node::lookup(std::string_view peer, std::string_view actor_name,
                                 duration timeout) {
  auto svc = service(peer);
  if (!svc) return error{errc::invalid_argument, "unknown node " + std::string(peer)};
  auto r = svc.ask<actor_ref>(lookup_request{std::string(actor_name)}, timeout).get();
  if (!r) return r.err();
  if (!*r) {
    return error{errc::invalid_argument,
                 "no actor named \"" + std::string(actor_name) + "\" on node " + std::string(peer)};
  }
  return *r;
}

expected<actor_ref> node::spawn_encoded(std::string_view peer, std::string_view type_name,
                                        std::vector<std::byte> arg, duration timeout) {
  auto svc = service(peer);
  if (!svc) return error{errc::invalid_argument, "unknown node " + std::string(peer)};
  spawn_request q{std::string(type_name), {}};
  q.arg.resize(arg.size());
  if (!arg.empty()) std::memcpy(q.arg.data(), arg.data(), arg.size());
  auto r = svc.ask<spawn_reply>(std::move(q), timeout).get();
  if (!r) return r.err();
  if (!r->error.empty()) return error{errc::invalid_argument, r->error};
  return r->ref;
}

void node::add_factory(std::string type_name, factory f) {
  std::lock_guard lock(impl_->fac_mu_);
  impl_->factories_[std::move(type_name)] = std::move(f);
}

void node::detach(const actor_ref& local) {
  auto* a = detail::core::actor_access::get(local);
  if (a == nullptr || detail::core::actor_access::is_proxy(a) || &a->system() != &impl_->sys_) {
    throw std::invalid_argument("node::detach: not a handle to an actor of this node's system");
  }
  impl_->detach(a);
}

void node::allow_remote_stop(const actor_ref& local) {
  auto* a = detail::core::actor_access::get(local);
  if (a == nullptr || detail::core::actor_access::is_proxy(a) || &a->system() != &impl_->sys_) {
    throw std::invalid_argument(
        "node::allow_remote_stop: not a handle to an actor of this node's system");
  }
  impl_->allow_remote_stop(a);
}

void node::monitor_node(std::string_view peer, const actor_ref& watcher) {
  bool down = false;
  std::vector<actor_ref> stopped;  // released after the lock (a last reference may need it)
  for (bool added = false; !added;) {
    auto p = impl_->get_peer(std::string(peer));
    std::lock_guard lock(p->mu_);
    // Forgotten between the lookup and the lock: the table has a new entry
    // (or will make one), and the watcher belongs there.
    if (!p->forgotten_.empty()) continue;
    p->prune_watchers(stopped);
    p->watchers_.push_back(watcher);
    down = p->machine_.current() == detail::peer_machine::phase::down;
    added = true;
  }
  if (down) watcher.send(node_down_msg{std::string(peer), "not connected"});
}

node_stats node::stats() const noexcept {
  auto& s = impl_->stats_;
  // acquire: pairs with the release of each pause (connection.cpp); the
  // counts read after it include what was delivered before the pause.
  const auto pauses = s.read_pauses.load(std::memory_order_acquire);
  const auto gauges = impl_->watchers_and_requests();
  auto ld = [](const std::atomic<std::uint64_t>& a) {
    return a.load(std::memory_order_relaxed);  // relaxed: statistics
  };
  return node_stats{ld(s.accepted),
                    ld(s.dialled),
                    ld(s.handshakes_failed),
                    ld(s.protocol_errors),
                    ld(s.peers_up),
                    ld(s.node_downs),
                    ld(s.messages_out),
                    ld(s.messages_in),
                    ld(s.writes),
                    ld(s.unreachable),
                    ld(s.overloaded),
                    ld(s.not_serializable),
                    ld(s.unknown_types),
                    ld(s.undecodable),
                    impl_->refusals_.count(),
                    impl_->peer_count(),
                    pauses,
                    ld(s.connections_refused),
                    gauges.first,
                    gauges.second,
                    ld(s.connections_evicted),
                    ld(s.peers_displaced),
                    static_cast<std::uint64_t>(std::max<std::int64_t>(
                        0, impl_->outbound_total_->steps.load(std::memory_order_relaxed))) *
                        detail::outbound_total::step,  // relaxed: a gauge
                    static_cast<std::uint64_t>(std::max<std::int64_t>(
                        0, impl_->links_total_->links.load(std::memory_order_relaxed))),
                    static_cast<std::uint64_t>(std::max<std::int64_t>(
                        0, impl_->read_buffers_->load(std::memory_order_relaxed)))};
}

}  // namespace libactor::net
