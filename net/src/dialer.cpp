// Outgoing connections: a dial (TCP connect, then the transport takes over),
// and the redial timers the peer machine asks for after a loss. The blocking
// node::connect() retries through here too (node.cpp).

#include "connection.hpp"
#include "node_impl.hpp"

#include <algorithm>
#include <random>

namespace libactor::net::detail {

void node_impl::dial(core::ref_ptr<peer> p, tcp::endpoint ep, waiter w, conn_id id) {
  stats_.dialled.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
  auto sock = std::make_shared<tcp::socket>(io_);
  asio::post(io_, [this, self = shared_from_this(), p, ep, w, sock, id] {
    if (stopping_.load(std::memory_order_acquire)) {
      if (w) w->set_value(error{errc::shutting_down, "the node is shutting down"});
      return;
    }
    // The TCP connect has the handshake's deadline too: an address that
    // swallows SYNs (a host that moved, a firewall) must not hold a dial
    // for the kernel's two minutes of retries.
    auto deadline = std::make_shared<asio::steady_timer>(io_, cfg_.handshake_timeout);
    deadline->async_wait([sock](boost::system::error_code e) {
      if (!e) {
        boost::system::error_code ignored;
        sock->close(ignored);
      }
    });
    sock->async_connect(
        ep, [this, self, p, ep, w, sock, id, deadline](boost::system::error_code ec) {
          const bool timed_out = deadline->expiry() <= asio::steady_timer::clock_type::now();
          deadline->cancel();
          if (ec) {
            const std::string why =
                "connecting to " + ep.address().to_string() + ":" + std::to_string(ep.port()) +
                (timed_out ? " timed out (handshake_timeout)" : " failed: " + ec.message());
            if (w) w->set_value(error{errc::node_down, why});
            if (p) drive(p, [&](peer_machine& m) { return m.closed(id, why, false); });
            return;
          }
          if (p) {
            // The machine may have moved on while the kernel connected (the
            // peer was forgotten, or another connection won): an attempt it
            // no longer waits for is dropped here, before it can authenticate.
            bool current = false;
            {
              std::lock_guard lock(p->mu_);
              current = !p->machine_.stopped() && p->machine_.outgoing() == id;
            }
            if (!current) {
              boost::system::error_code ignored;
              sock->close(ignored);
              return;
            }
          }
          auto c = std::make_shared<connection>(*this, std::move(*sock), id, true);
          c->waiter_ = w;
          c->dialled_ = ep;
          c->target_ = p;
          conns_.emplace(id, c);
          c->start();
        });
  });
}

void node_impl::schedule_redial(const core::ref_ptr<peer>& p, duration delay) {
  // Jitter: between half the delay and all of it, so that nodes that lost
  // a peer at once (a switch restarted) do not redial in step.
  thread_local std::minstd_rand rng{std::random_device{}()};
  delay = delay / 2 + duration(std::uniform_int_distribution<duration::rep>(
                          0, std::max<duration::rep>(0, delay.count() - delay.count() / 2))(rng));
  auto t = std::make_shared<asio::steady_timer>(io_, delay);
  asio::post(io_, [this, t] {
    if (stopping_.load(std::memory_order_acquire)) {
      t->cancel();
    } else {
      redials_.push_back(t);
    }
  });
  t->async_wait([this, self = shared_from_this(), p, t](boost::system::error_code ec) {
    std::erase(redials_, t);
    if (ec || stopping_.load(std::memory_order_acquire)) return;
    drive(p, [&](peer_machine& m) { return m.redial_due(next_conn()); });
  });
}

}  // namespace libactor::net::detail
