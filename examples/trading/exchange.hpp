#pragma once
// The exchange: one order book per instrument (price-time priority), a risk
// actor, a market-data actor, and one gateway session per trader.
//
//   trader --new_order--> session --> risk --> book --order_ack/fill--> trader
//   trader --cancel-----> session ---------->  book --cancel_ack------> trader
//   book --trade/top_of_book--> market data --(every 5 ms)--> subscribers

#include <libactor/libactor.hpp>

#include <deque>
#include <map>
#include <memory>
#include <unordered_map>

#include "protocol.hpp"

namespace trading {

using libactor::actor;
using libactor::behavior;
using libactor::task;
using namespace std::chrono_literals;

/// Risk releases: the quantity of a trader's orders that stopped being open.
struct exposure_release {
  std::uint32_t trader = 0;
  std::int64_t qty = 0;
};
struct risk_stats_request {};
struct sync_request {
  actor_ref reply_to;
};
struct synced {
  std::uint32_t instrument = 0;
};
LIBACTOR_WIRE_TYPE(synced, "trading.synced", instrument)
struct trade_batch {
  std::vector<trade> trades;
  std::vector<top_of_book> tops;
};
LIBACTOR_WIRE_TYPE(trade_batch, "trading.trade_batch", trades, tops)

/// One instrument's book. Price levels are FIFO queues (time priority);
/// bids are matched from the highest price, asks from the lowest.
class order_book : public actor {
 public:
  order_book(std::uint32_t instrument, actor_ref risk, actor_ref market_data)
      : instrument_(instrument), risk_(std::move(risk)), md_(std::move(market_data)) {}

 protected:
  behavior make_behavior() override {
    return {
        [this](new_order& o) { on_order(o); },
        [this](const cancel_order& c) { on_cancel(c); },
        [this](const sync_request& s) { s.reply_to.send(synced{instrument_}); },
        [this](const stats_request&) {
          book_stats st{instrument_, traded_qty_, trades_, crossed_, 0, 0};
          for (auto& [p, q] : bids_) {
            for (auto& r : q) st.resting_bid_qty += r.qty;
          }
          for (auto& [p, q] : asks_) {
            for (auto& r : q) st.resting_ask_qty += r.qty;
          }
          return st;
        },
    };
  }

 private:
  struct resting {
    std::uint64_t id;
    std::uint32_t trader;
    std::int64_t qty;
    actor_ref owner;
  };
  using level = std::deque<resting>;
  struct where {
    side s;
    std::int64_t price;
  };

  void on_order(new_order& o) {
    o.reply_to.send(order_ack{o.id, true, {}});
    if (o.s == side::buy) {
      match(o, asks_,
            [&](std::int64_t best) { return o.type == order_type::market || best <= o.price; });
    } else {
      match(o, bids_,
            [&](std::int64_t best) { return o.type == order_type::market || best >= o.price; });
    }
    if (o.qty > 0) {
      if (o.type == order_type::market) {
        // Market orders do not rest: the remainder is cancelled.
        risk_.send(exposure_release{o.trader, o.qty});
      } else {
        auto& book_side = o.s == side::buy ? bids_ : asks_;
        book_side[o.price].push_back(resting{o.id, o.trader, o.qty, o.reply_to});
        index_[o.id] = where{o.s, o.price};
      }
    }
    if (!bids_.empty() && !asks_.empty() && bids_.rbegin()->first >= asks_.begin()->first) {
      ++crossed_;
    }
    publish_top();
  }

  template <class Book, class Crosses>
  void match(new_order& o, Book& book, Crosses crosses) {
    while (o.qty > 0 && !book.empty()) {
      auto it = o.s == side::buy ? book.begin() : std::prev(book.end());
      if (!crosses(it->first)) break;
      level& q = it->second;
      while (o.qty > 0 && !q.empty()) {
        resting& r = q.front();
        const std::int64_t n = std::min(o.qty, r.qty);
        const std::int64_t price = it->first;
        o.qty -= n;
        r.qty -= n;
        o.reply_to.send(fill{o.id, o.s, instrument_, price, n});
        r.owner.send(fill{r.id, o.s == side::buy ? side::sell : side::buy, instrument_, price, n});
        risk_.send(exposure_release{o.trader, n});
        risk_.send(exposure_release{r.trader, n});
        md_.send(trade{instrument_, price, n});
        traded_qty_ += n;
        ++trades_;
        if (r.qty == 0) {
          index_.erase(r.id);
          q.pop_front();
        }
      }
      if (q.empty()) book.erase(it);
    }
  }

  void on_cancel(const cancel_order& c) {
    auto w = index_.find(c.id);
    if (w == index_.end()) {
      c.reply_to.send(cancel_ack{c.id, false, 0});
      return;
    }
    auto& book_side = w->second.s == side::buy ? bids_ : asks_;
    auto lv = book_side.find(w->second.price);
    std::int64_t qty = 0;
    if (lv != book_side.end()) {
      auto& q = lv->second;
      for (auto it = q.begin(); it != q.end(); ++it) {
        if (it->id == c.id && it->trader == c.trader) {
          qty = it->qty;
          q.erase(it);
          break;
        }
      }
      if (q.empty()) book_side.erase(lv);
    }
    index_.erase(w);
    if (qty > 0) risk_.send(exposure_release{c.trader, qty});
    c.reply_to.send(cancel_ack{c.id, qty > 0, qty});
    publish_top();
  }

  void publish_top() {
    top_of_book t{instrument_, 0, 0, 0, 0};
    if (!bids_.empty()) {
      t.bid = bids_.rbegin()->first;
      for (auto& r : bids_.rbegin()->second) t.bid_qty += r.qty;
    }
    if (!asks_.empty()) {
      t.ask = asks_.begin()->first;
      for (auto& r : asks_.begin()->second) t.ask_qty += r.qty;
    }
    md_.send(t);
  }

  std::uint32_t instrument_;
  actor_ref risk_;
  actor_ref md_;
  std::map<std::int64_t, level> bids_;
  std::map<std::int64_t, level> asks_;
  std::unordered_map<std::uint64_t, where> index_;
  std::int64_t traded_qty_ = 0;
  std::uint64_t trades_ = 0;
  std::uint64_t crossed_ = 0;
};

/// Keeps each trader's open quantity (accepted, not yet filled or
/// cancelled) under a limit; rejects orders that would exceed it.
class risk : public actor {
 public:
  explicit risk(std::int64_t limit) : limit_(limit) {}
  void set_books(std::vector<actor_ref> books) { books_ = std::move(books); }

 protected:
  behavior make_behavior() override {
    return {
        [this](new_order& o) {
          auto& open = open_[o.trader];
          if (open + o.qty > limit_) {
            ++rejects_;
            o.reply_to.send(order_ack{o.id, false,
                                      "risk: open quantity " + std::to_string(open + o.qty) +
                                          " would exceed the limit " + std::to_string(limit_)});
            return;
          }
          open += o.qty;
          books_[o.instrument].send(std::move(o));
        },
        [this](const exposure_release& r) { open_[r.trader] -= r.qty; },
        [this](const std::vector<actor_ref>& books) { books_ = books; },
        [this](const risk_stats_request&) { return rejects_; },
    };
  }

 private:
  std::int64_t limit_;
  std::vector<actor_ref> books_;
  std::unordered_map<std::uint32_t, std::int64_t> open_;
  std::uint64_t rejects_ = 0;
};

/// Publishes trades and top-of-book changes to subscribers, conflated every
/// 5 ms so a busy book does not flood slow subscribers.
class market_data : public actor {
 protected:
  behavior make_behavior() override {
    struct flush {};
    send_every(5ms, flush{});
    return {
        [this](const subscribe& s) {
          subs_.push_back(s.subscriber);
          monitor(s.subscriber);
        },
        [this](const libactor::down_msg& d) { std::erase(subs_, d.source); },
        [this](const trade& t) { pending_.trades.push_back(t); },
        [this](const top_of_book& t) { tops_[t.instrument] = t; },
        [this](flush) {
          for (auto& [i, t] : tops_) pending_.tops.push_back(t);
          tops_.clear();
          if (pending_.trades.empty() && pending_.tops.empty()) return;
          for (auto& s : subs_) s.send(pending_);
          pending_ = {};
        },
    };
  }

 private:
  std::vector<actor_ref> subs_;
  trade_batch pending_;
  std::map<std::uint32_t, top_of_book> tops_;
};

/// The gateway for one trader: stamps the trader's identity and reply
/// address (never trusted from the wire), validates, and routes. Stops when
/// the trader's node goes away.
class session : public actor {
 public:
  session(std::uint32_t trader, actor_ref trader_ref, actor_ref risk, std::vector<actor_ref> books,
          std::shared_ptr<std::atomic<std::uint64_t>> invalid)
      : trader_(trader),
        trader_ref_(std::move(trader_ref)),
        risk_(std::move(risk)),
        books_(std::move(books)),
        invalid_(std::move(invalid)) {}

 protected:
  behavior make_behavior() override {
    monitor(trader_ref_);
    return {
        [this](new_order& o) {
          o.trader = trader_;
          o.reply_to = trader_ref_;
          if (auto why = invalid(o); !why.empty()) {
            // relaxed: a statistic.
            invalid_->fetch_add(1, std::memory_order_relaxed);
            trader_ref_.send(order_ack{o.id, false, "invalid: " + why});
            return;
          }
          risk_.send(std::move(o));
        },
        [this](cancel_order& c) {
          c.trader = trader_;
          c.reply_to = trader_ref_;
          if (c.instrument >= books_.size()) {
            trader_ref_.send(cancel_ack{c.id, false, 0});
            return;
          }
          books_[c.instrument].send(std::move(c));
        },
        [this](const sync&) {
          for (auto& b : books_) b.send(sync_request{trader_ref_});
        },
        [this](const libactor::down_msg&) { quit(); },
    };
  }

 private:
  std::string invalid(const new_order& o) const {
    if (o.instrument >= books_.size()) return "no instrument " + std::to_string(o.instrument);
    if (o.qty <= 0 || o.qty > 1'000'000) return "quantity " + std::to_string(o.qty);
    if (o.type == order_type::limit && o.price <= 0) return "price " + std::to_string(o.price);
    if ((o.id >> 40) != trader_) return "order id not in this trader's range";
    return {};
  }

  std::uint32_t trader_;
  actor_ref trader_ref_;
  actor_ref risk_;
  std::vector<actor_ref> books_;
  std::shared_ptr<std::atomic<std::uint64_t>> invalid_;
};

/// The exchange's front door, registered as "exchange": login spawns a
/// session; stats_request gathers every book's statistics.
inline behavior exchange(actor& self, std::int64_t risk_limit) {
  auto r = self.spawn<risk>(risk_limit);
  auto md = self.spawn<market_data>();
  std::vector<actor_ref> books;
  for (std::uint32_t i = 0; i < instruments.size(); ++i)
    books.push_back(self.spawn<order_book>(i, r, md));
  r.send(books);
  auto invalid = std::make_shared<std::atomic<std::uint64_t>>(0);
  return {
      [&self, r, books, invalid](const login& l) -> actor_ref {
        return self.spawn<session>(l.trader, l.trader_ref, r, books, invalid);
      },
      [md](const subscribe& s) { md.send(s); },
      [&self, r, books, invalid](stats_request) -> task<exchange_stats> {
        exchange_stats st;
        for (auto& b : books) {
          auto s = co_await self.ask<book_stats>(b, stats_request{}, 30s);
          if (s) st.books.push_back(*s);
        }
        auto rr = co_await self.ask<std::uint64_t>(r, risk_stats_request{}, 30s);
        st.risk_rejects = rr ? *rr : 0;
        // relaxed: a statistic, read after the sessions' increments were
        // followed by messages this actor has since received.
        st.invalid_rejects = invalid->load(std::memory_order_relaxed);
        co_return st;
      },
  };
}

}  // namespace trading
