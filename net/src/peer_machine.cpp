// The transitions of peer_machine.hpp; the rules are in its header.

#include "peer_machine.hpp"

#include <algorithm>

namespace libactor::net::detail {

using kind = peer_action::kind;

void peer_machine::redial(actions& out) {
  if (!want_ || stopped_ || redial_pending_ || primary_ != 0 || outgoing_ != 0) return;
  redial_pending_ = true;
  out.push_back({.what = kind::schedule_redial, .delay = backoff_});
  backoff_ = std::min(backoff_ * 2, s_.reconnect_max);
}

peer_machine::actions peer_machine::want_connection(conn_id next) {
  actions out;
  if (given_up_) return out;
  want_ = true;
  if (stopped_ || primary_ != 0 || outgoing_ != 0 || redial_pending_) return out;
  outgoing_ = next;
  outgoing_authenticated_ = false;
  out.push_back({.what = kind::dial, .conn = next});
  return out;
}

peer_machine::actions peer_machine::authenticated(conn_id c, bool dialled) {
  actions out;
  if (!dialled) return out;  // an acceptor waits for the dialler's node_info
  want_ = true;              // this node knows where the peer listens: it redials after a loss
  if (stopped_) {
    out.push_back({.what = kind::close, .conn = c, .text = stop_text_});
    return out;
  }
  if (primary_ != 0) {
    out.push_back({.what = kind::close, .conn = c, .text = "already connected"});
    if (outgoing_ == c) outgoing_ = 0;
    return out;
  }
  if (outgoing_ != c) {
    if (outgoing_ != 0 && outgoing_authenticated_) {
      // Another attempt of ours already sent node_info: that one decides.
      out.push_back({.what = kind::close, .conn = c, .text = "another connection is being made"});
      return out;
    }
    if (outgoing_ != 0) {
      out.push_back(
          {.what = kind::close, .conn = outgoing_, .text = "another connection got through first"});
    }
    outgoing_ = c;
  }
  outgoing_authenticated_ = true;
  out.push_back({.what = kind::send_node_info, .conn = c});
  return out;
}

void peer_machine::promote(conn_id c, std::uint64_t inc, actions& out) {
  primary_ = c;
  incarnation_ = inc;
  announced_down_ = false;
  awaiting_peer_ = false;
  outgoing_ = 0;
  outgoing_authenticated_ = false;
  backoff_ = s_.reconnect_min;
  failed_dials_ = 0;
  given_up_ = false;
  out.push_back({.what = kind::promote, .conn = c, .incarnation = inc});
}

peer_machine::actions peer_machine::node_info(conn_id c, bool dialled, std::uint64_t inc) {
  actions out;
  if (stopped_) {
    out.push_back({.what = kind::close, .conn = c, .text = stop_text_});
    return out;
  }
  if (primary_ != 0 && inc < incarnation_) {
    // An older process than the one in use: it was replaced. (Once the
    // newer one is gone, any incarnation may connect again: a clock that
    // ran ahead, or a peer that claimed a far-future incarnation, cannot
    // lock the name out.)
    const std::string why = "incarnation " + std::to_string(inc) +
                            " is older than the one in use (" + std::to_string(incarnation_) +
                            "): that process was replaced";
    if (dialled) {
      out.push_back({.what = kind::close, .conn = c, .text = why});
      if (outgoing_ == c) outgoing_ = 0;
    } else {
      out.push_back({.what = kind::refuse, .conn = c, .text = why});
    }
    return out;
  }
  if (dialled) {
    // The acceptor's answer: it promoted this connection.
    if (outgoing_ != c || primary_ != 0) {
      out.push_back({.what = kind::close, .conn = c, .text = "superseded by another connection"});
      return out;
    }
    promote(c, inc, out);
    return out;
  }
  // Accepting side.
  if (primary_ != 0) {
    if (inc == incarnation_) {
      out.push_back(
          {.what = kind::refuse, .conn = c, .text = "already connected", .duplicate = true});
      return out;
    }
    // A new incarnation: the process in use was replaced. The old
    // connection is refused with stale_incarnation, so a replaced process
    // that still runs learns why it lost the connection.
    out.push_back({.what = kind::teardown,
                   .incarnation = incarnation_,
                   .text = "restarted (incarnation " + std::to_string(inc) + " replaces " +
                           std::to_string(incarnation_) + ")",
                   .replaced = true});
    out.push_back({.what = kind::refuse,
                   .conn = primary_,
                   .text = "incarnation " + std::to_string(incarnation_) +
                           " was replaced by a newer one (" + std::to_string(inc) + ")",
                   .replaced = true});
    primary_ = 0;
    out.push_back({.what = kind::send_node_info, .conn = c});
    promote(c, inc, out);
    return out;
  }
  if (outgoing_ != 0 && outgoing_authenticated_ && s_.own_dial_wins) {
    // This node's attempt reached the peer (it sent node_info there), so
    // the peer decides the same way from its side. An attempt that has not
    // got that far (still in TCP connect, perhaps to an address the peer
    // left) does not keep the peer's own connection out.
    out.push_back({.what = kind::refuse,
                   .conn = c,
                   .text = "simultaneous connect: this node's dial wins",
                   .duplicate = true});
    return out;
  }
  if (outgoing_ != 0) {
    out.push_back({.what = kind::close,
                   .conn = outgoing_,
                   .text = "simultaneous connect: the peer's dial wins"});
  }
  out.push_back({.what = kind::send_node_info, .conn = c});
  promote(c, inc, out);
  return out;
}

peer_machine::actions peer_machine::closed(conn_id c, const std::string& why, bool graceful) {
  actions out;
  if (c == 0) return out;
  if (c == primary_) {
    primary_ = 0;
    announced_down_ = true;
    out.push_back(
        {.what = kind::teardown, .incarnation = incarnation_, .text = why, .graceful = graceful});
    redial(out);
  } else if (c == outgoing_) {
    outgoing_ = 0;
    outgoing_authenticated_ = false;
    awaiting_peer_ = false;
    if (!announced_down_) {
      // The first attempt failed: what queued for it is lost, and watchers
      // hear it. A failed redial of a peer already down says nothing new.
      announced_down_ = true;
      out.push_back({.what = kind::teardown, .incarnation = incarnation_, .text = why});
    }
    ++failed_dials_;
    if (!pinned_ && s_.max_failed_dials != 0 && failed_dials_ >= s_.max_failed_dials) {
      // Wanted only because messages named it: an address that may be
      // nobody's, or a node that left for good.
      given_up_ = true;
      want_ = false;
      out.push_back({.what = kind::give_up, .text = std::to_string(failed_dials_)});
      return out;
    }
    redial(out);
  }
  return out;
}

peer_machine::actions peer_machine::duplicate(conn_id c) {
  actions out;
  if (c == 0 || c != outgoing_) return out;
  outgoing_ = 0;
  outgoing_authenticated_ = false;
  awaiting_peer_ = true;
  redial(out);
  return out;
}

peer_machine::actions peer_machine::redial_due(conn_id next) {
  actions out;
  redial_pending_ = false;
  if (stopped_ || !want_ || primary_ != 0 || outgoing_ != 0) return out;
  outgoing_ = next;
  outgoing_authenticated_ = false;
  out.push_back({.what = kind::dial, .conn = next});
  return out;
}

peer_machine::actions peer_machine::stop() {
  return end("this node is shutting down", "this node shut down", true);
}

peer_machine::actions peer_machine::forget(const std::string& why) {
  want_ = false;
  actions out = end(why, why, false);
  auto down = std::find_if(out.begin(), out.end(),
                           [](const peer_action& a) { return a.what == kind::teardown; });
  if (down == out.end()) {
    // Down already (or never dialled): its proxies still stand for it, and
    // end here with `why`.
    out.push_back({.what = kind::teardown, .incarnation = incarnation_, .text = why});
    down = out.end() - 1;
    down->again = true;
  }
  down->forgotten = true;
  return out;
}

peer_machine::actions peer_machine::end(const std::string& close_text, const std::string& down_text,
                                        bool graceful) {
  actions out;
  stopped_ = true;
  stop_text_ = close_text;
  if (primary_ != 0) {
    out.push_back({.what = kind::close, .conn = primary_, .text = close_text});
  }
  if (outgoing_ != 0) {
    out.push_back({.what = kind::close, .conn = outgoing_, .text = close_text});
  }
  if (primary_ != 0 || ((outgoing_ != 0 || awaiting_peer_) && !announced_down_)) {
    announced_down_ = true;
    out.push_back({.what = kind::teardown,
                   .incarnation = incarnation_,
                   .text = down_text,
                   .graceful = graceful});
  }
  primary_ = 0;
  outgoing_ = 0;
  awaiting_peer_ = false;
  return out;
}

}  // namespace libactor::net::detail
