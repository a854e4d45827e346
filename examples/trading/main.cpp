// trading: an exchange node and trader nodes.
//
//   trading exchange --secret-file F [--port P] [--risk-limit Q]
//   trading trader   --secret-file F --exchange HOST:PORT [--trader N] [--orders N] ...
//   trading load     [--traders M] [--orders N] [--risk-limit Q]
//
// `load` is the demo: it runs the exchange in this process, starts M trader
// processes that submit N orders in total, checks the invariants at the
// end, and prints a summary whose last line is one JSON object.

#include <fcntl.h>

#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <future>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../common/cli.hpp"
#include "../common/process.hpp"
#include "../common/run.hpp"
#include "exchange.hpp"
#include "trader.hpp"

using namespace std::chrono_literals;
using namespace trading;

namespace {

const char* const usage = R"(usage:
  trading load [--traders M] [--orders N] [--window W] [--risk-limit Q]
      The demo. Runs an exchange node in this process and M trader processes
      (default 4) that submit N orders in total (default 200000), each with at
      most W unacknowledged (default 64). Prints orders/s, acknowledgement
      latency percentiles and the invariant checks; the last line is JSON.
  trading exchange --secret-file FILE [--host ADDR] [--port PORT] [--risk-limit Q]
      An exchange node until SIGINT/SIGTERM. Prints "exchange listening on ADDR:PORT".
  trading trader --secret-file FILE --exchange HOST:PORT [--trader N] [--orders N]
                 [--window W] [--no-market-data] [--report-to-collector]
      One trader node. Prints its report as JSON, or with --report-to-collector
      sends it to the exchange node's "collector" actor (used by load).

  --risk-limit Q   the most open (unfilled) quantity a trader may have (default 3000)
)";

libactor::net::node_config node_config(std::string name, std::string secret) {
  libactor::net::node_config c;
  c.name = std::move(name);
  c.secret = std::move(secret);
  return c;
}

std::string report_json(const trader_report& r) {
  histogram h{r.latency_histogram};
  char buf[512];
  std::snprintf(
      buf, sizeof buf,
      "{\"trader\":%u,\"orders\":%llu,\"acks\":%llu,\"accepted\":%llu,\"rejected\":%llu,"
      "\"duplicate_or_unknown_acks\":%llu,\"cancels\":%llu,\"bought\":%lld,\"sold\":%lld,"
      "\"market_data\":%llu,\"seconds\":%.3f,\"ack_p50_us\":%.1f,\"ack_p99_us\":%.1f}",
      r.trader, static_cast<unsigned long long>(r.orders), static_cast<unsigned long long>(r.acks),
      static_cast<unsigned long long>(r.accepted), static_cast<unsigned long long>(r.rejected),
      static_cast<unsigned long long>(r.duplicate_or_unknown_acks),
      static_cast<unsigned long long>(r.cancels), static_cast<long long>(r.bought),
      static_cast<long long>(r.sold), static_cast<unsigned long long>(r.market_data), r.seconds,
      h.percentile(0.5) / 1000, h.percentile(0.99) / 1000);
  return buf;
}

int run_exchange(examples::flags& f) {
  auto cfg = node_config("exchange", f.secret());
  cfg.host = f.text("host", "127.0.0.1");
  cfg.port = static_cast<std::uint16_t>(f.number("port", 0, 0, 65535));
  const long limit = f.number("risk-limit", 3'000, 1, 1'000'000'000);
  f.check_unused();
  examples::stop_signals stop;
  libactor::actor_system sys;
  libactor::net::node node(sys, cfg);
  sys.register_name("exchange",
                    sys.spawn([limit](libactor::actor& self) { return exchange(self, limit); }));
  std::printf("exchange listening on %s:%u\n", cfg.host.c_str(),
              static_cast<unsigned>(node.port()));
  std::fflush(stdout);
  stop.wait();
  return 0;
}

int run_trader(examples::flags& f) {
  const auto [host, port] = f.endpoint("--exchange", f.required("exchange"));
  trader_config tc;
  tc.trader = static_cast<std::uint32_t>(f.number("trader", 1, 1, 1'000'000));
  tc.orders = static_cast<std::uint64_t>(f.number("orders", 10'000, 1, 1'000'000'000));
  tc.window = static_cast<std::uint64_t>(f.number("window", 64, 1, 1'000'000));
  tc.seed = tc.trader;
  tc.subscribe_market_data = !f.has("no-market-data");
  const bool to_collector = f.has("report-to-collector");
  auto cfg = node_config("trader-" + std::to_string(tc.trader), f.secret());
  cfg.listen = true;  // the exchange sends acks and fills to this node's actors
  f.check_unused();

  libactor::actor_system sys;
  libactor::net::node node(sys, cfg);
  if (auto r = node.connect(host, port, 30s); !r) {
    std::fprintf(stderr, "trading trader: %s\n", r.err().to_string().c_str());
    return 1;
  }
  auto exch = node.lookup("exchange", "exchange", 30s);
  if (!exch) {
    std::fprintf(stderr, "trading trader: %s\n", exch.err().to_string().c_str());
    return 1;
  }
  std::promise<trader_report> done;
  auto fut = done.get_future();
  sys.spawn<trader>(tc, *exch, [&done](trader_report r) { done.set_value(std::move(r)); });
  if (fut.wait_for(600s) != std::future_status::ready) {
    std::fprintf(stderr, "trading trader: no result within 600 s\n");
    return 1;
  }
  const trader_report rep = fut.get();
  if (to_collector) {
    auto collector = node.lookup("exchange", "collector", 30s);
    if (!collector) {
      std::fprintf(stderr, "trading trader: %s\n", collector.err().to_string().c_str());
      return 1;
    }
    // Asked, so that the report has arrived before this process exits.
    auto r = collector->ask<void>(rep, 30s).get();
    if (!r) {
      std::fprintf(stderr, "trading trader: reporting failed: %s\n", r.err().to_string().c_str());
      return 1;
    }
  }
  std::printf("%s\n", report_json(rep).c_str());
  return 0;
}

int run_load(examples::flags& f) {
  const auto traders = static_cast<std::uint32_t>(f.number("traders", 4, 1, 64));
  const auto orders = static_cast<std::uint64_t>(f.number("orders", 200'000, 1, 100'000'000));
  const auto window = f.number("window", 64, 1, 1'000'000);
  const long limit = f.number("risk-limit", 3'000, 1, 1'000'000'000);
  f.check_unused();

  examples::run_secret secret("trading");
  if (!secret.ok()) {
    std::fprintf(stderr, "trading load: cannot write %s\n", secret.path().c_str());
    return 1;
  }

  libactor::actor_system sys;
  libactor::net::node node(sys, node_config("exchange", secret.secret()));
  sys.register_name("exchange",
                    sys.spawn([limit](libactor::actor& self) { return exchange(self, limit); }));
  std::mutex mu;
  std::condition_variable cv;
  std::vector<trader_report> reports;
  sys.register_name("collector", sys.spawn([&](libactor::actor&) -> libactor::behavior {
    return {[&](const trader_report& r) {
      std::lock_guard lock(mu);
      reports.push_back(r);
      cv.notify_all();
    }};
  }));
  std::printf("exchange listening on 127.0.0.1:%u; starting %u trader processes, %llu orders\n",
              static_cast<unsigned>(node.port()), traders, static_cast<unsigned long long>(orders));
  std::fflush(stdout);

  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::unique_ptr<examples::child_process>> children;
  for (std::uint32_t i = 1; i <= traders; ++i) {
    const std::uint64_t share = orders / traders + (i <= orders % traders ? 1 : 0);
    children.push_back(std::make_unique<examples::child_process>(
        examples::self_path(),
        std::vector<std::string>{"trader", "--secret-file", secret.path(), "--exchange",
                                 "127.0.0.1:" + std::to_string(node.port()), "--trader",
                                 std::to_string(i), "--orders", std::to_string(share), "--window",
                                 std::to_string(window), "--report-to-collector"}));
  }
  bool all = false;
  {
    std::unique_lock lock(mu);
    all = cv.wait_for(lock, 600s, [&] { return reports.size() == traders; });
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  int failed_children = 0;
  for (auto& c : children) {
    const int status = c->wait();
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failed_children;
  }
  secret.forget();

  auto stats = sys.lookup("exchange").ask<exchange_stats>(stats_request{}, 30s).get();

  // Invariants.
  std::vector<std::string> broken;
  std::uint64_t total_orders = 0, acks = 0, rejected = 0, md = 0;
  std::int64_t bought = 0, sold = 0;
  double busiest = 0;
  histogram h;
  for (auto& r : reports) {
    total_orders += r.orders;
    acks += r.acks;
    rejected += r.rejected;
    bought += r.bought;
    sold += r.sold;
    md += r.market_data;
    busiest = std::max(busiest, r.seconds);
    h.merge(r.latency_histogram);
    if (r.acks != r.orders) {
      broken.push_back("trader " + std::to_string(r.trader) + ": " + std::to_string(r.acks) +
                       " acks for " + std::to_string(r.orders) + " orders");
    }
    if (r.duplicate_or_unknown_acks != 0) {
      broken.push_back("trader " + std::to_string(r.trader) + ": " +
                       std::to_string(r.duplicate_or_unknown_acks) + " duplicate or unknown acks");
    }
  }
  if (!all)
    broken.push_back(std::to_string(reports.size()) + " of " + std::to_string(traders) +
                     " traders reported");
  if (failed_children != 0)
    broken.push_back(std::to_string(failed_children) + " trader processes failed");
  if (total_orders != orders) broken.push_back("orders submitted: " + std::to_string(total_orders));
  std::int64_t traded = 0;
  if (!stats) {
    broken.push_back("no exchange statistics: " + stats.err().to_string());
  } else {
    for (auto& b : stats->books) {
      traded += b.traded_qty;
      if (b.crossed != 0)
        broken.push_back(std::string(instruments[b.instrument]) + " book crossed " +
                         std::to_string(b.crossed) + " times");
    }
    if (stats->risk_rejects + stats->invalid_rejects != rejected) {
      broken.push_back("rejections: traders saw " + std::to_string(rejected) + ", exchange made " +
                       std::to_string(stats->risk_rejects + stats->invalid_rejects));
    }
  }
  if (bought != sold || bought != traded) {
    broken.push_back("filled quantity: bought " + std::to_string(bought) + ", sold " +
                     std::to_string(sold) + ", traded " + std::to_string(traded));
  }
  const bool ok = broken.empty();

  const double rate = busiest > 0 ? static_cast<double>(total_orders) / busiest : 0;
  std::printf("traders: %u processes, %.2f s wall time (including their start)\n", traders, wall);
  std::printf(
      "orders: %llu submitted, %llu acknowledged, %llu rejected (risk %llu, invalid %llu)\n",
      static_cast<unsigned long long>(total_orders), static_cast<unsigned long long>(acks),
      static_cast<unsigned long long>(rejected),
      static_cast<unsigned long long>(stats ? stats->risk_rejects : 0),
      static_cast<unsigned long long>(stats ? stats->invalid_rejects : 0));
  std::printf("filled: %lld bought, %lld sold, %lld traded on the books\n",
              static_cast<long long>(bought), static_cast<long long>(sold),
              static_cast<long long>(traded));
  std::printf("market data: %llu trades and book updates received by subscribers\n",
              static_cast<unsigned long long>(md));
  std::printf(
      "throughput: %.0f orders/s; acknowledgement latency p50 %.1f us, p99 %.1f us, p99.9 %.1f "
      "us\n",
      rate, h.percentile(0.5) / 1000, h.percentile(0.99) / 1000, h.percentile(0.999) / 1000);
  for (auto& b : broken) std::printf("INVARIANT BROKEN: %s\n", b.c_str());
  std::printf("invariants: %s\n",
              ok ? "every order acknowledged exactly once, fills conserved, books never crossed"
                 : "BROKEN");
  std::printf(
      "{\"orders\":%llu,\"orders_per_sec\":%.0f,\"ack_p50_us\":%.1f,\"ack_p99_us\":%.1f,"
      "\"ack_p999_us\":%.1f,\"invariants_ok\":%s,\"traders\":%u,\"rejected\":%llu,\"traded_qty\":%"
      "lld}\n",
      static_cast<unsigned long long>(total_orders), rate, h.percentile(0.5) / 1000,
      h.percentile(0.99) / 1000, h.percentile(0.999) / 1000, ok ? "true" : "false", traders,
      static_cast<unsigned long long>(rejected), static_cast<long long>(traded));
  std::fflush(stdout);
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return examples::run_modes(
      "trading", argc, argv, usage,
      {{"exchange", run_exchange}, {"trader", run_trader}, {"load", run_load}});
}
