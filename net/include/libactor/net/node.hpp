#pragma once
/// @file
/// A node: an actor system made reachable from other processes.
///
/// A node listens on host:port, connects to peers, and makes handles to
/// actors in other processes behave like local ones: `send`, `ask`,
/// `monitor` and `link` work unchanged, with the same ordering per
/// sender-receiver pair, and failures arrive through the same paths
/// (down_msg, exit signals, error replies). See docs/protocol.md for the
/// protocol and docs/architecture.md ("Network layer") for the design.
///
///     actor_system sys;
///     net::node node(sys, {.name = "a", .port = 4000, .secret = secret});
///     auto peer = node.connect("127.0.0.1", 4001, 5s);   // returns "b"
///     auto counter = node.lookup("b", "counter", 5s);      // a remote handle
///     counter->send(increment{});
///
/// Blocking members (connect, lookup, spawn_remote) are for threads that are
/// not actors. Inside an actor, ask the peer's service handle instead:
/// `co_await self.ask<actor_ref>(node.service("b"), net::lookup_request{"counter"}, 5s)`.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "libactor/net/export.hpp"
#include "libactor/net/secret.hpp"
#include "libactor/net/wire.hpp"
#include "libactor/system.hpp"

namespace libactor::net {

namespace detail {
class node_impl;
}

/// TLS 1.3 with mutual authentication (docs/protocol.md, "TLS"): set the
/// three files to turn it on. Every connection then runs a TLS handshake in
/// which both sides present a certificate and verify the other's against
/// `ca_file`; the node's own handshake and every frame travel inside TLS,
/// and node_config::protect_frames does not apply (TLS protects them). The
/// files are read when the node starts; one that cannot be loaded, or a key
/// that is not the certificate's, makes the node constructor throw
/// std::invalid_argument with OpenSSL's reason.
struct tls_config {
  std::string ca_file;           ///< PEM: the CA certificates a peer's certificate must chain to.
  std::string certificate_file;  ///< PEM: this node's certificate, then any intermediates.
  std::string private_key_file;  ///< PEM: the private key of certificate_file.
  /// The peer's certificate must name the node name the peer announces (a
  /// subjectAltName DNS entry, or the common name when there is none; no
  /// wildcards): a node holding one certificate of the CA cannot pass for
  /// another node.
  bool check_peer_name = true;
  /// Accepted connections that may start a TLS handshake per second, in
  /// all and from one address (each also the burst). A handshake costs the
  /// acceptor's I/O thread about half a millisecond of key exchange and
  /// signature, for a ClientHello anyone can replay for free; past these a
  /// connection is closed before its ClientHello is read
  /// (node_stats::connections_refused). The defaults bound that work to
  /// about a tenth of the I/O thread; nodes that reconnect are not near
  /// them.
  std::uint32_t max_handshakes_per_second = 200;
  std::uint32_t max_handshakes_per_second_per_address = 20;
  [[nodiscard]] bool enabled() const noexcept {
    return !ca_file.empty() || !certificate_file.empty() || !private_key_file.empty();
  }
};

struct node_config {
  /// This node's name: unique in the cluster; handles carry it. A process
  /// started later with the same name is a newer incarnation: it replaces
  /// this one on the nodes it connects to (docs/protocol.md).
  std::string name;
  /// Address to listen on (numeric IPv4 or IPv6), also advertised in handles:
  /// across machines, the address other nodes reach this one at (there is
  /// no separate advertised address; 0.0.0.0 listens everywhere, but nodes
  /// that only hold a handle cannot dial it).
  std::string host = "127.0.0.1";
  /// 0: any free port (see node::port()).
  std::uint16_t port = 0;
  /// The cluster secret, never sent. It must hold at least 128 bits
  /// (net::secret_bits: 32 hex digits, for example); the constructor throws
  /// std::invalid_argument otherwise. net::generate_secret() makes one.
  /// With `tls` it may be empty: certificates then authenticate nodes; when
  /// set, peers must hold it as well as a certificate.
  std::string secret;
  /// TLS with certificates; off unless its files are set.
  tls_config tls;
  /// False: this node only dials out.
  bool listen = true;
  /// Seal every frame after the handshake in authenticated, encrypted
  /// records (AES-256-GCM or ChaCha20-Poly1305, see aes_gcm, under keys
  /// derived from the secret and the connection's nonces, with sequence
  /// numbers): a frame injected,
  /// replayed, reordered or changed on the way is refused and the
  /// connection closed (docs/protocol.md, "Sealed records"). Every node of
  /// a cluster must agree (a mismatch is refused at the handshake). Turn it
  /// off only where the network path is trusted.
  bool protect_frames = true;
  /// The cipher of sealed records and of TLS records: AES-256-GCM when
  /// both nodes allow it here and both have libsodium's AES-GCM (x86-64
  /// CPUs with AES-NI and PCLMUL; about 2.5 times faster per record
  /// there), ChaCha20-Poly1305 otherwise. False: ChaCha20-Poly1305 always
  /// (constant time in software on any CPU). Nodes set either way connect
  /// to each other; the log's "is up" line names the cipher a connection
  /// uses ("frames sealed (AES-256-GCM)", "over TLS 1.3
  /// (TLS_CHACHA20_POLY1305_SHA256)").
  bool aes_gcm = true;
  /// Largest frame accepted or sent, checked before anything is buffered.
  /// At least 256.
  ///
  /// The limits below are checked when the node starts (the constructor
  /// throws std::invalid_argument naming the one that is wrong); a count or
  /// size of SIZE_MAX means no bound.
  std::uint32_t max_frame_size = 1u << 20;
  /// Limits on decoding a peer's messages and spawn arguments: elements per
  /// container and in the whole value, and nesting depth. A message over
  /// them is refused on its own (a request gets an error answer) and the
  /// connection stays. The defaults admit what fits in a default frame and
  /// holds at most 16 MiB in memory once decoded (containers count their
  /// elements' sizes; an element may be far larger than its encoding), and
  /// bound zero-byte elements (empty declared types) to 2^20.
  decode_limits message_limits{.max_elements = std::uint64_t{1} << 20,
                               .max_total_elements = std::uint64_t{1} << 20,
                               .max_depth = 64,
                               .max_decoded_bytes = std::uint64_t{16} << 20};
  /// Bytes queued for one peer and not yet handed to the kernel. A send that
  /// would exceed it fails with send_status::overloaded (an ask with
  /// errc::overloaded) and is counted as a dead letter. At least
  /// max_frame_size.
  std::size_t max_outbound_bytes = std::size_t{64} << 20;
  /// The same, over all connections together (counted in whole steps of
  /// 256 KiB of each queue): above it, a send toward a peer whose queue
  /// already holds max_outbound_bytes_total / max_peers (at least a step)
  /// fails with send_status::overloaded, and one toward a peer holding less
  /// goes out whatever its size, so peers that stop reading cannot make the
  /// node hold max_peers times max_outbound_bytes, nor keep others' messages
  /// out. The node then holds at most about twice this, plus a frame per
  /// connection (node_stats::outbound_bytes). Messages queued for a peer
  /// still being connected count as its queue. At least max_outbound_bytes.
  std::size_t max_outbound_bytes_total = std::size_t{512} << 20;
  /// Bytes of the messages one connection delivered that actors have not
  /// finished handling (counted by encoded size, what the decoded value
  /// holds in containers, the proxies its actor handles and its sender
  /// made, and the message block). Above
  /// it, the node stops reading that connection until they are down to
  /// half: the peer's sends then back up in TCP and its outbound queue, and
  /// its senders see send_status::overloaded. A peer whose messages wait
  /// behind a slow actor is not declared down for the silence this causes.
  /// Every actor fed by that connection waits too (one stream per peer).
  /// At least 1024.
  std::size_t max_inbound_bytes = std::size_t{64} << 20;
  /// The same, over all connections together: above it, a connection
  /// holding more than max_inbound_bytes_total / max_peers stops being read
  /// until the total is down to half (checked at its heartbeat ticks), and
  /// one holding less reads on, so a peer that floods does not stall the
  /// others' requests. The node then holds at most twice this, plus one
  /// read per connection: what many peers, or one peer's successive
  /// connections, can make it hold. At least max_inbound_bytes.
  std::size_t max_inbound_bytes_total = std::size_t{512} << 20;
  /// A heartbeat frame goes out this often on every connection.
  duration heartbeat_interval = std::chrono::milliseconds(500);
  /// A peer silent for this long is down: its connection is closed, and
  /// monitors, links and pending asks on its actors fire. At least three
  /// heartbeat_intervals (the constructor throws std::invalid_argument
  /// otherwise): a peer is declared
  /// down only after several heartbeats in a row were missed. This node's
  /// own heartbeats keep going while its handlers run long (a backstop
  /// thread handles the I/O when no worker does).
  duration heartbeat_timeout = std::chrono::seconds(3);
  /// Deadline per connection for the TCP connect, the handshake (version
  /// check and authentication) and the node_info exchange after it.
  duration handshake_timeout = std::chrono::seconds(5);
  /// A request that leaves for a peer without an ask of this process behind
  /// it (one forwarded with its asker's identity, whose timeout is not known
  /// here) keeps its key for this long; an answer after that is dropped as a
  /// dead letter. An ask's key goes at the ask's own timeout. Positive.
  duration forwarded_request_timeout = std::chrono::seconds(60);
  /// Accepted connections that have not authenticated yet (or not sent
  /// their node_info since), in all and from one address. One over the per-address cap is closed at
  /// once, before a byte is sent or a buffer allocated (counted in node_stats::connections_refused,
  /// logged within the refusal log's rate limit). When all max_unauthenticated are taken, a new
  /// connection takes the place of the oldest one from the address holding the most, if that
  /// address holds more than the new one's (node_stats::connections_evicted);
  /// otherwise it is refused. So a few addresses that flood the node share
  /// the slots and cannot keep other addresses out; it takes about
  /// max_unauthenticated addresses of its own to churn a newcomer's
  /// handshake out. "Address": an IPv4 address, or an IPv6 /64. Each
  /// costs the connection's state and at most one handshake frame (4 KiB;
  /// with TLS, its state: docs/protocol.md), for at most
  /// handshake_timeout.
  std::size_t max_unauthenticated = 256;
  std::size_t max_unauthenticated_per_address = 16;
  /// Links that peers may make to one local actor (link frames). A link over
  /// the limit is refused: the peer's actor receives an exit signal that
  /// says so, and a line is logged. Local links are not limited.
  std::size_t max_links_per_actor = 10'000;
  /// Links between this node's actors and one peer's actors, made from
  /// either side (a link costs up to about 850 bytes here: docs/protocol.md,
  /// "Limits"). When this node already has this many with a peer, a link
  /// the peer's actor asks for is refused as one past max_links_per_actor
  /// is: the peer's actor gets an exit signal saying so, which stops it
  /// unless it traps exits. So a link your actor makes is bounded by the
  /// target node's setting; this node's own link() calls are never refused
  /// by its own, but they count. Without it, a peer could make
  /// max_links_per_actor links to each of the max_spawned_per_peer actors
  /// it spawned.
  std::size_t max_links_per_peer = 16'384;
  /// The same over all peers together: past it, every peer's link frames
  /// are refused until links end. At least max_links_per_peer.
  std::size_t max_links_total = 262'144;
  /// Actors one peer node may have spawned here (node::spawn_remote) that
  /// still run. A spawn over it is refused with an error that says so.
  /// Actors a peer spawned stop when that peer's process goes down (its
  /// connection is lost for good, it leaves, or a new incarnation replaces
  /// it), unless node::detach was called for them here.
  std::size_t max_spawned_per_peer = 10'000;
  /// Distinct actor ids that were never exported here (or no longer are),
  /// that one connection may address in a burst (messages, stop requests,
  /// watches, links); then 64 more per second. A connection over it is
  /// closed as probing for ids (`protocol_errc::probing`). Ids are random
  /// 64-bit numbers, so a peer that has no handle to an actor cannot name
  /// it except by guessing; this bounds the guesses. A peer that keeps
  /// sending to one stopped actor uses one id of it, not one per message.
  std::size_t max_unknown_ids = 1024;
  /// Redial delay after a dialled peer is lost: doubles from the first value
  /// up to the second; each delay is drawn between half of it and all of it
  /// (jitter), so that nodes that lost a peer together do not redial in step.
  duration reconnect_min = std::chrono::milliseconds(50);
  duration reconnect_max = std::chrono::seconds(2);
  /// A node this node dials because peers' messages named it (not one it
  /// reached with node::connect, which is redialled for as long as this
  /// node runs) is given up after this many failed dials in a row: handles
  /// to its actors then fail with errc::node_down saying so, and its
  /// address is not dialled again for a minute, whatever node name a
  /// handle gives it; after that a handle naming it dials it again. A node
  /// that connects here is up again at once. 0: never give up.
  unsigned max_failed_dials = 10;
  /// Nodes this node keeps state for (connected, connecting, or named in a
  /// handle). A new name when the table is full replaces a node that
  /// nothing refers to and that has nothing pending (a few of the oldest
  /// are looked at); if none is found, a handle naming it fails with
  /// errc::node_down, and a connection from it is refused
  /// (protocol_errc::too_many_peers). This node's own calls (connect,
  /// monitor_node) are not refused.
  std::size_t max_peers = 1024;
  /// Addresses this node may dial when only a peer's message named them (a
  /// handle carries its node's address): entries are addresses
  /// ("10.1.2.3", "::1") or networks ("10.0.0.0/8", "fd00::/8"). Empty:
  /// any address. A handle naming a node elsewhere is not dialled: unless
  /// that node connects here, the handle fails with errc::node_down saying
  /// why, and the refusal is logged (rate-limited) and counted in
  /// node_stats::refused. node::connect is not restricted by it.
  std::vector<std::string> dial_allow;
  /// Receives one line per connection event worth a human's attention (bad
  /// input, failed handshakes, nodes down and up). Default: the actor
  /// system's logger (system_config::logger, category `network`, with its
  /// rate limit).
  std::function<void(std::string_view)> log;
};

/// Counters since the node started, and gauges of what the node holds now:
/// `peers_up`, `peers_known`, `node_monitors`, `pending_requests`,
/// `outbound_bytes`, `links` and `read_buffer_bytes` go down as well as up;
/// the others only grow.
struct node_stats {
  std::uint64_t accepted = 0;           ///< Inbound TCP connections.
  std::uint64_t dialled = 0;            ///< Outbound connection attempts.
  std::uint64_t handshakes_failed = 0;  ///< Wrong secret, version or certificate, garbage, timeout.
  std::uint64_t protocol_errors = 0;    ///< Authenticated peers disconnected for bad frames.
  std::uint64_t peers_up = 0;           ///< Peers with a live connection now.
  std::uint64_t node_downs = 0;         ///< Times a peer was declared unreachable.
  std::uint64_t messages_out = 0;
  std::uint64_t messages_in = 0;
  std::uint64_t writes = 0;            ///< Write system calls (one carries many messages).
  std::uint64_t unreachable = 0;       ///< Messages refused or lost because a node was down.
  std::uint64_t overloaded = 0;        ///< Messages refused by a full outbound queue.
  std::uint64_t not_serializable = 0;  ///< Messages refused for lack of a wire declaration.
  std::uint64_t unknown_types = 0;     ///< Messages received of a type this node does not know.
  /// Messages received over node_config::message_limits or with a value out
  /// of its type's range (an enum value this build lacks): refused one by one.
  std::uint64_t undecodable = 0;
  /// Frames refused by the rules of what a peer may do (docs/protocol.md,
  /// "What a peer may do"): stop requests to actors the peer did not spawn,
  /// forged exit signals, links to the service actor.
  std::uint64_t refused = 0;
  /// Nodes in the peer table now (at most node_config::max_peers, plus
  /// those this node's own calls and peers' connections added).
  std::uint64_t peers_known = 0;
  /// Times a connection stopped reading because its delivered messages
  /// exceeded node_config::max_inbound_bytes.
  std::uint64_t read_pauses = 0;
  /// Inbound connections closed before their handshake: over
  /// node_config::max_unauthenticated or max_unauthenticated_per_address,
  /// or over tls_config's handshake rates.
  std::uint64_t connections_refused = 0;
  /// Node monitors (node::monitor_node) whose watcher still runs; those of
  /// stopped watchers are dropped.
  std::uint64_t node_monitors = 0;
  /// Asks sent to peers' actors that wait for an answer. An ask's entry
  /// goes when it is answered, when its node goes down, or at the first
  /// heartbeat tick after its timeout (after forwarded_request_timeout for
  /// a forwarded request).
  std::uint64_t pending_requests = 0;
  /// Connections not yet authenticated closed to make room for a newer one
  /// from an address holding fewer (node_config::max_unauthenticated).
  std::uint64_t connections_evicted = 0;
  /// Peers that only messages named (never reached) forgotten while their
  /// handles were in use, to make room for a node that connected
  /// (node_config::max_peers).
  std::uint64_t peers_displaced = 0;
  /// Bytes queued toward peers (connected, or being connected) and not yet
  /// handed to the kernel,
  /// in whole steps of 256 KiB per connection, rounded down
  /// (max_outbound_bytes_total).
  std::uint64_t outbound_bytes = 0;
  /// Links between this node's actors and its peers' actors, held now
  /// (max_links_per_peer, max_links_total).
  std::uint64_t links = 0;
  /// Bytes the authenticated connections' read buffers hold now, over all
  /// connections: from 64 KiB to 256 KiB per connection, more only while a
  /// frame larger than 128 KiB is being received (docs/protocol.md,
  /// "Limits").
  std::uint64_t read_buffer_bytes = 0;
};

/// Delivered to actors watching a node (node::monitor_node) when it becomes
/// unreachable.
struct LIBACTOR_NET_EXPORT node_down_msg {
  std::string node;
  std::string reason;
};

/// Delivered to actors watching a node when a connection to it is
/// established (first time or after a reconnect).
struct LIBACTOR_NET_EXPORT node_up_msg {
  std::string node;
};

/// Asked of a node's service handle: the actor registered there under
/// `name`. Answered with an actor_ref, empty when there is none.
struct LIBACTOR_NET_EXPORT lookup_request {
  std::string name;
};
LIBACTOR_WIRE_TYPE(lookup_request, "libactor.lookup", name)

/// Asked of a node's service handle: spawn an actor of a type registered
/// there with node::register_actor_type. `arg` is the encoded argument.
struct LIBACTOR_NET_EXPORT spawn_request {
  std::string type;
  std::vector<std::uint8_t> arg;
};
LIBACTOR_WIRE_TYPE(spawn_request, "libactor.spawn", type, arg)

/// The answer to spawn_request: the new actor, or an empty handle and why.
struct LIBACTOR_NET_EXPORT spawn_reply {
  actor_ref ref;
  std::string error;
};
LIBACTOR_WIRE_TYPE(spawn_reply, "libactor.spawn_reply", ref, error)

/// The built-in message types every node can decode, and their wire names:
/// the one list both the compile-time check (builtin_message) and the
/// registration when the first node starts are made from.
template <class T>
inline constexpr std::string_view builtin_message_name{};
template <>
inline constexpr std::string_view builtin_message_name<bool> = "bool";
template <>
inline constexpr std::string_view builtin_message_name<std::int8_t> = "i8";
template <>
inline constexpr std::string_view builtin_message_name<std::uint8_t> = "u8";
template <>
inline constexpr std::string_view builtin_message_name<std::int16_t> = "i16";
template <>
inline constexpr std::string_view builtin_message_name<std::uint16_t> = "u16";
template <>
inline constexpr std::string_view builtin_message_name<std::int32_t> = "i32";
template <>
inline constexpr std::string_view builtin_message_name<std::uint32_t> = "u32";
template <>
inline constexpr std::string_view builtin_message_name<std::int64_t> = "i64";
template <>
inline constexpr std::string_view builtin_message_name<std::uint64_t> = "u64";
template <>
inline constexpr std::string_view builtin_message_name<float> = "f32";
template <>
inline constexpr std::string_view builtin_message_name<double> = "f64";
template <>
inline constexpr std::string_view builtin_message_name<std::string> = "string";
template <>
inline constexpr std::string_view builtin_message_name<actor_ref> = "libactor.actor_ref";
template <>
inline constexpr std::string_view builtin_message_name<unit_t> = "libactor.unit";
template <>
inline constexpr std::string_view builtin_message_name<error> = "libactor.error";
template <>
inline constexpr std::string_view builtin_message_name<exit_msg> = "libactor.exit";
template <>
inline constexpr std::string_view builtin_message_name<exit_reason> = "libactor.exit_reason";

namespace detail {
using builtin_message_types =
    std::tuple<bool, std::int8_t, std::uint8_t, std::int16_t, std::uint16_t, std::int32_t,
               std::uint32_t, std::int64_t, std::uint64_t, float, double, std::string, actor_ref,
               unit_t, error, exit_msg, exit_reason>;
}  // namespace detail

template <class T>
concept builtin_message = !builtin_message_name<T>.empty();

/// A type that can cross the network as a whole message, known at compile
/// time: declared with LIBACTOR_WIRE_TYPE, or built in. (Other encodable
/// types become messages through register_message; that is checked when
/// they are sent.)
template <class T>
concept remote_message = wire_declared<T> || builtin_message<T>;

/// actor_ref::send for a handle meant to be remote: a message type no node
/// could decode is a compile-time error here, where plain send() refuses it
/// at run time (send_status::not_serializable).
template <class T>
send_status send(const actor_ref& to, T&& msg) {
  static_assert(remote_message<std::remove_cvref_t<T>>,
                "libactor::net::send: this message type cannot cross the network; declare it "
                "with LIBACTOR_WIRE_TYPE(Type, \"app.name\", fields...) next to the type");
  return to.send(std::forward<T>(msg));
}

/// actor_ref::ask with the same compile-time check on the request and the
/// reply type.
template <class R, class T>
[[nodiscard]] reply<R> ask(const actor_ref& to, T&& msg, duration timeout) {
  static_assert(remote_message<std::remove_cvref_t<T>>,
                "libactor::net::ask: the request type cannot cross the network; declare it "
                "with LIBACTOR_WIRE_TYPE(Type, \"app.name\", fields...) next to the type");
  static_assert(std::is_void_v<R> || remote_message<R>,
                "libactor::net::ask: the reply type cannot cross the network; declare it with "
                "LIBACTOR_WIRE_TYPE(Type, \"app.name\", fields...) next to the type");
  return to.template ask<R>(std::forward<T>(msg), timeout);
}

class LIBACTOR_NET_EXPORT node {
 public:
  /// Builds a spawned actor from an encoded argument: `r` reads it (with the
  /// node's context, so that handles inside resolve, and its
  /// message_limits); all of it must be read.
  using factory = std::function<expected<actor_ref>(actor_system&, reader& r)>;

  /// Starts the node: binds and listens (unless cfg.listen is false). Its
  /// I/O runs on the system's idle workers (there is no network thread); a
  /// second node on the same system gets an I/O thread of its own. Throws
  /// std::invalid_argument for a bad configuration (and for a system in
  /// deterministic mode, which has no workers) and std::system_error when
  /// the address cannot be bound.
  node(actor_system& sys, node_config cfg);
  /// Closes every connection (peers see this node down) and stops its I/O.
  /// Destroy the node before its actor system (declare the system first):
  /// an actor_system destroyed while a node uses it stops the process with
  /// a message that says so.
  ~node();
  node(const node&) = delete;
  node& operator=(const node&) = delete;

  [[nodiscard]] const std::string& name() const noexcept;
  /// The bound port (the chosen one when cfg.port was 0).
  [[nodiscard]] std::uint16_t port() const noexcept;

  /// Connects to the node at host:port and returns its name once a
  /// connection to it is in use (the peer answered node_info; if the two
  /// nodes already had one, or were dialling each other, that one).
  /// Retries refused connections with backoff until `timeout` has passed
  /// (errc::timeout); a refusal that trying again cannot change (a wrong
  /// secret, version or certificate, TLS on one side only) fails at once
  /// with errc::invalid_argument and the reason.
  /// After a later loss of the connection this node redials with backoff,
  /// always at this address. `host` is a numeric IPv4 or IPv6 address.
  /// Blocks; do not call from an actor.
  expected<std::string> connect(const std::string& host, std::uint16_t port, duration timeout);

  /// Waits until a connection to node `peer` is up (for nodes that dial
  /// this one). errc::timeout if it is not up within `timeout`. Blocks; not
  /// from an actor.
  expected<void> await_peer(std::string_view peer, duration timeout);

  /// The actor registered under `actor_name` on node `peer` (connected
  /// before). errc::invalid_argument if no actor has that name there,
  /// errc::node_down if the peer is unreachable. Blocks; not from an actor.
  expected<actor_ref> lookup(std::string_view peer, std::string_view actor_name, duration timeout);

  /// A handle to node `peer`'s service actor, which answers lookup_request
  /// and spawn_request. Empty if `peer` is unknown.
  [[nodiscard]] actor_ref service(std::string_view peer);

  /// Lets peers spawn `A` under `type_name`: default-constructed...
  template <class A>
  requires std::derived_from<A, actor> && std::default_initializable<A>
  void register_actor_type(std::string type_name) {
    add_factory(std::move(type_name), [](actor_system& sys, reader& r) -> expected<actor_ref> {
      if (r.remaining() != 0) {
        return error{errc::invalid_argument, "this actor type takes no argument"};
      }
      return sys.spawn<A>();
    });
  }
  /// ... or constructed from one wire-encodable `Arg`.
  template <class A, class Arg>
  requires std::derived_from<A, actor> && std::constructible_from<A, Arg>
  void register_actor_type(std::string type_name) {
    add_factory(std::move(type_name), [](actor_system& sys, reader& r) -> expected<actor_ref> {
      Arg a{};
      if (!wire_decode(r, a)) {
        return error{errc::invalid_argument, std::string("malformed spawn argument: ") +
                                                 to_string(r.error().code) + " at byte " +
                                                 std::to_string(r.error().offset)};
      }
      if (r.remaining() != 0) {
        return error{errc::invalid_argument, "malformed spawn argument: trailing bytes"};
      }
      return sys.spawn<A>(std::move(a));
    });
  }

  /// Spawns an actor of registered type `type_name` on node `peer`. Blocks;
  /// not from an actor.
  expected<actor_ref> spawn_remote(std::string_view peer, std::string_view type_name,
                                   duration timeout) {
    return spawn_encoded(peer, type_name, {}, timeout);
  }
  template <class Arg>
  expected<actor_ref> spawn_remote(std::string_view peer, std::string_view type_name,
                                   const Arg& arg, duration timeout) {
    std::vector<std::byte> bytes;
    writer w{bytes, context()};
    wire_encode(w, arg);
    return spawn_encoded(peer, type_name, std::move(bytes), timeout);
  }

  /// Lets every peer that holds a handle to `local` (an actor of this
  /// node's system) stop it with actor_system::stop, or link it (its
  /// linked actor's exit then stops `local`). Without this, a peer may stop
  /// and link only the actors its process spawned here (spawn_remote);
  /// other stop requests and links are refused, counted in
  /// node_stats::refused and logged (a refused linker receives an exit
  /// signal saying why). Throws std::invalid_argument for a handle that is
  /// not to an actor of this node's system.
  void allow_remote_stop(const actor_ref& local);
  /// An actor a peer spawned here (node::spawn_remote) keeps running when
  /// that peer goes down; by default it stops then (it no longer counts
  /// against the peer's node_config::max_spawned_per_peer either way until
  /// it stops). Throws std::invalid_argument for a handle that is not to an
  /// actor of this node's system.
  void detach(const actor_ref& local);

  /// `watcher` receives node_down_msg whenever `peer` becomes unreachable
  /// and node_up_msg whenever a connection to it is established, until
  /// the watcher stops. If `peer` is down now, node_down_msg comes at once.
  void monitor_node(std::string_view peer, const actor_ref& watcher);

  [[nodiscard]] node_stats stats() const noexcept;

  /// @internal The node's handle context, for encoding outside messages.
  [[nodiscard]] handle_context* context() const noexcept;

 private:
  void add_factory(std::string type_name, factory f);
  expected<actor_ref> spawn_encoded(std::string_view peer, std::string_view type_name,
                                    std::vector<std::byte> arg, duration timeout);

  std::shared_ptr<detail::node_impl> impl_;
};

}  // namespace libactor::net
