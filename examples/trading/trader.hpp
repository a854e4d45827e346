#pragma once
// A trader that generates load: random limit and market orders around a
// mid price, and cancels of its own resting orders, with at most `window`
// orders awaiting their acknowledgement. It measures each order's
// acknowledgement latency and checks that every order is acknowledged
// exactly once.

#include <libactor/libactor.hpp>

#include <chrono>
#include <cmath>
#include <deque>
#include <functional>
#include <random>
#include <unordered_map>
#include <unordered_set>

#include "exchange.hpp"
#include "protocol.hpp"

namespace trading {

/// A log-linear latency histogram: 16 buckets per power of two of
/// nanoseconds, so a percentile is within 1/16 (6 %) of the true value.
class histogram {
 public:
  static constexpr std::size_t sub = 16;
  static constexpr std::size_t size = 64 * sub;

  histogram() : counts_(size, 0) {}
  explicit histogram(std::vector<std::uint64_t> counts) : counts_(std::move(counts)) {
    counts_.resize(size, 0);
  }

  void add(std::uint64_t ns) { ++counts_[bucket(ns)]; }
  void merge(const std::vector<std::uint64_t>& other) {
    for (std::size_t i = 0; i < std::min(size, other.size()); ++i) counts_[i] += other[i];
  }
  [[nodiscard]] const std::vector<std::uint64_t>& counts() const { return counts_; }

  /// The value (ns) below which a fraction `q` of the samples lie.
  [[nodiscard]] double percentile(double q) const {
    std::uint64_t total = 0;
    for (auto c : counts_) total += c;
    if (total == 0) return 0;
    const auto target = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total)));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < size; ++i) {
      seen += counts_[i];
      if (seen >= target) return upper(i);
    }
    return upper(size - 1);
  }

 private:
  static std::size_t bucket(std::uint64_t v) {
    if (v < sub) return static_cast<std::size_t>(v);
    const unsigned msb = 63u - static_cast<unsigned>(__builtin_clzll(v));
    const auto frac = static_cast<std::size_t>((v >> (msb - 4)) & (sub - 1));
    return std::min<std::size_t>((msb - 3) * sub + frac, size - 1);
  }
  static double upper(std::size_t i) {
    if (i < sub) return static_cast<double>(i);
    const std::size_t msb = i / sub + 3;
    const std::size_t frac = i % sub;
    return std::ldexp(static_cast<double>(sub + frac + 1), static_cast<int>(msb) - 4);
  }

  std::vector<std::uint64_t> counts_;
};

struct trader_config {
  std::uint32_t trader = 1;
  std::uint64_t orders = 10'000;
  std::uint64_t window = 64;
  bool subscribe_market_data = true;
  std::uint64_t seed = 1;
};

/// Runs one trader against `session`; calls `done` with its report.
class trader : public actor {
 public:
  trader(trader_config cfg, actor_ref exchange, std::function<void(trader_report)> done)
      : cfg_(cfg), exchange_(std::move(exchange)), done_(std::move(done)), rng_(cfg.seed) {}

 protected:
  behavior make_behavior() override {
    struct start {};
    self().send(start{});
    return {
        [this](start) -> task<void> {
          // A named request, not a temporary in the co_await expression:
          // see the GCC 12 note on actor::ask.
          login request{cfg_.trader, self()};
          auto s = co_await ask<actor_ref>(exchange_, std::move(request), 30s);
          if (!s || !*s) {
            report_.duplicate_or_unknown_acks = 1;  // counts as a failed run
            finish();
            co_return;
          }
          session_ = *s;
          if (cfg_.subscribe_market_data) exchange_.send(subscribe{self()});
          started_ = std::chrono::steady_clock::now();
          pump();
        },
        [this](const order_ack& a) {
          auto it = pending_.find(a.id);
          if (it == pending_.end()) {
            ++report_.duplicate_or_unknown_acks;
            return;
          }
          hist_.add(static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                   std::chrono::steady_clock::now() - it->second)
                                                   .count()));
          pending_.erase(it);
          ++report_.acks;
          if (a.accepted) {
            ++report_.accepted;
            resting_.push_back(a.id);
          } else {
            ++report_.rejected;
          }
          pump();
        },
        [this](const fill& f) { (f.s == side::buy ? report_.bought : report_.sold) += f.qty; },
        [this](const cancel_ack&) {
          --cancels_open_;
          pump();
        },
        [this](const trade_batch& b) { report_.market_data += b.trades.size() + b.tops.size(); },
        [this](const synced&) {
          if (++synced_ == instruments.size()) finish();
        },
    };
  }

 private:
  void pump() {
    while (sent_ < cfg_.orders && pending_.size() < cfg_.window) {
      // Like a market maker, keep few orders resting: cancel the oldest
      // (it may have filled meanwhile; the cancel_ack says so).
      while (resting_.size() > max_resting) {
        const std::uint64_t id = resting_.front();
        resting_.pop_front();
        session_.send(cancel_order{id, 0, instrument_of_.at(id), {}});
        ++cancels_open_;
        ++report_.cancels;
      }
      new_order o;
      o.id = (std::uint64_t{cfg_.trader} << 40) | ++sent_;
      o.instrument = static_cast<std::uint32_t>(rng_() % instruments.size());
      o.s = rng_() % 2 == 0 ? side::buy : side::sell;
      o.type = rng_() % 10 == 0 ? order_type::market : order_type::limit;
      // Prices around 1000 ticks, buyers a little below, sellers a little above.
      const auto spread = static_cast<std::int64_t>(rng_() % 11);
      o.price = o.s == side::buy ? 995 + spread : 1005 - spread;
      o.qty = 1 + static_cast<std::int64_t>(rng_() % 100);
      instrument_of_[o.id] = o.instrument;
      pending_.emplace(o.id, std::chrono::steady_clock::now());
      session_.send(std::move(o));
      ++report_.orders;
    }
    if (sent_ == cfg_.orders && pending_.empty() && !closing_) {
      // Done submitting: cancel what still rests, so that no other trader
      // can fill it after this one has reported.
      closing_ = true;
      report_.seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
      for (auto id : resting_) {
        session_.send(cancel_order{id, 0, instrument_of_.at(id), {}});
        ++cancels_open_;
      }
      resting_.clear();
    }
    if (closing_ && cancels_open_ == 0 && !syncing_) {
      // Every fill a book sent before its answer to sync has arrived by then
      // (FIFO per sender-receiver pair), so the fill totals are final.
      syncing_ = true;
      session_.send(sync{});
    }
  }

  void finish() {
    report_.trader = cfg_.trader;
    report_.latency_histogram = hist_.counts();
    done_(report_);
  }

  trader_config cfg_;
  actor_ref exchange_;
  std::function<void(trader_report)> done_;
  std::mt19937_64 rng_;
  actor_ref session_;
  std::uint64_t sent_ = 0;
  std::unordered_map<std::uint64_t, std::chrono::steady_clock::time_point> pending_;
  std::unordered_map<std::uint64_t, std::uint32_t> instrument_of_;
  static constexpr std::size_t max_resting = 16;
  std::deque<std::uint64_t> resting_;
  std::uint64_t cancels_open_ = 0;
  std::size_t synced_ = 0;
  bool closing_ = false;
  bool syncing_ = false;
  std::chrono::steady_clock::time_point started_;
  histogram hist_;
  trader_report report_;
};

}  // namespace trading
