#pragma once
// The messages between trader nodes and the exchange node.
//
// A trader logs in (the exchange spawns a gateway session for it), then
// sends new_order and cancel_order to its session. Every order gets exactly
// one order_ack (accepted, or rejected with a reason) and, while it rests
// or as it matches, fills. A cancel gets one cancel_ack. Market data
// (trades, top of book) goes to subscribers.

#include <libactor/net/node.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace trading {

using libactor::actor_ref;

inline constexpr std::array<const char*, 4> instruments{"ACME", "BOLT", "CRUX", "DYNA"};

enum class side : std::uint8_t { buy, sell };
LIBACTOR_WIRE_ENUM(side, side::buy, side::sell)
enum class order_type : std::uint8_t { limit, market };
LIBACTOR_WIRE_ENUM(order_type, order_type::limit, order_type::market)

struct login {
  std::uint32_t trader = 0;
  actor_ref trader_ref;  ///< Receives acks and fills.
};
LIBACTOR_WIRE_TYPE(login, "trading.login", trader, trader_ref)

struct new_order {
  std::uint64_t id = 0;  ///< Unique per trader.
  std::uint32_t trader = 0;
  std::uint32_t instrument = 0;
  side s = side::buy;
  order_type type = order_type::limit;
  std::int64_t price = 0;  ///< Ticks; ignored for market orders.
  std::int64_t qty = 0;
  actor_ref reply_to;  ///< Set by the session, not trusted from the trader.
};
LIBACTOR_WIRE_TYPE(new_order, "trading.new_order", id, trader, instrument, s, type, price, qty,
                   reply_to)

struct cancel_order {
  std::uint64_t id = 0;
  std::uint32_t trader = 0;
  std::uint32_t instrument = 0;
  actor_ref reply_to;
};
LIBACTOR_WIRE_TYPE(cancel_order, "trading.cancel", id, trader, instrument, reply_to)

struct order_ack {
  std::uint64_t id = 0;
  bool accepted = false;
  std::string reason;  ///< Why it was rejected.
};
LIBACTOR_WIRE_TYPE(order_ack, "trading.order_ack", id, accepted, reason)

struct cancel_ack {
  std::uint64_t id = 0;
  bool cancelled = false;  ///< False when the order had already filled or gone.
  std::int64_t qty = 0;    ///< The quantity that was still resting.
};
LIBACTOR_WIRE_TYPE(cancel_ack, "trading.cancel_ack", id, cancelled, qty)

struct fill {
  std::uint64_t id = 0;
  side s = side::buy;
  std::uint32_t instrument = 0;
  std::int64_t price = 0;
  std::int64_t qty = 0;
};
LIBACTOR_WIRE_TYPE(fill, "trading.fill", id, s, instrument, price, qty)

struct trade {
  std::uint32_t instrument = 0;
  std::int64_t price = 0;
  std::int64_t qty = 0;
};
LIBACTOR_WIRE_TYPE(trade, "trading.trade", instrument, price, qty)

struct top_of_book {
  std::uint32_t instrument = 0;
  std::int64_t bid = 0;  ///< 0: no bid.
  std::int64_t bid_qty = 0;
  std::int64_t ask = 0;  ///< 0: no ask.
  std::int64_t ask_qty = 0;
};
LIBACTOR_WIRE_TYPE(top_of_book, "trading.top_of_book", instrument, bid, bid_qty, ask, ask_qty)

struct subscribe {
  actor_ref subscriber;
};
LIBACTOR_WIRE_TYPE(subscribe, "trading.subscribe", subscriber)

/// Asked of an order book: answered after every earlier message it sent.
struct sync {};
LIBACTOR_WIRE_TYPE(sync, "trading.sync")

struct book_stats {
  std::uint32_t instrument = 0;
  std::int64_t traded_qty = 0;
  std::uint64_t trades = 0;
  std::uint64_t crossed = 0;  ///< Times the book was found crossed after matching (must be 0).
  std::int64_t resting_bid_qty = 0;
  std::int64_t resting_ask_qty = 0;
};
LIBACTOR_WIRE_TYPE(book_stats, "trading.book_stats", instrument, traded_qty, trades, crossed,
                   resting_bid_qty, resting_ask_qty)

struct stats_request {};
LIBACTOR_WIRE_TYPE(stats_request, "trading.stats_request")

/// The exchange's answer to stats_request.
struct exchange_stats {
  std::vector<book_stats> books;
  std::uint64_t risk_rejects = 0;
  std::uint64_t invalid_rejects = 0;
};
LIBACTOR_WIRE_TYPE(exchange_stats, "trading.exchange_stats", books, risk_rejects, invalid_rejects)

/// A trader's account of its run, sent to the load driver's collector.
struct trader_report {
  std::uint32_t trader = 0;
  std::uint64_t orders = 0;
  std::uint64_t acks = 0;
  std::uint64_t accepted = 0;
  std::uint64_t rejected = 0;
  std::uint64_t duplicate_or_unknown_acks = 0;
  std::uint64_t cancels = 0;
  std::int64_t bought = 0;
  std::int64_t sold = 0;
  std::uint64_t market_data = 0;
  double seconds = 0;
  std::vector<std::uint64_t> latency_histogram;  ///< See histogram in trader.hpp.
};
LIBACTOR_WIRE_TYPE(trader_report, "trading.trader_report", trader, orders, acks, accepted, rejected,
                   duplicate_or_unknown_acks, cancels, bought, sold, market_data, seconds,
                   latency_histogram)

}  // namespace trading
