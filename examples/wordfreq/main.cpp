// wordfreq: counts word frequencies of a generated corpus with a pool of
// counter actors, a coordinator that asks them with co_await, a monitor on
// each counter, and a progress timer. Prints what it did.
//
//   wordfreq [documents] [counters]

#include <libactor/libactor.hpp>

#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using libactor::actor;
using libactor::behavior;
using libactor::task;

namespace {

struct document {
  std::string text;
};
struct count_query {};
using counts = std::map<std::string, std::size_t>;

/// Counts the words of the documents it receives.
class counter : public actor {
 protected:
  behavior make_behavior() override {
    return {
        [this](document d) {
          std::size_t start = 0;
          while (start < d.text.size()) {
            std::size_t end = d.text.find(' ', start);
            if (end == std::string::npos) end = d.text.size();
            if (end > start) ++counts_[d.text.substr(start, end - start)];
            start = end + 1;
          }
        },
        [this](count_query) { return counts_; },
    };
  }

 private:
  counts counts_;
};

struct run {
  std::size_t documents;
};
struct progress_tick {};
struct result {
  counts total;
};

std::string make_document(std::mt19937& rng) {
  static const char* words[] = {"actor", "message", "mailbox", "worker",  "steal",
                                "queue", "timer",   "link",    "monitor", "reply"};
  // A skewed distribution so the ranking is interesting.
  std::geometric_distribution<int> pick(0.3);
  std::string text;
  for (int i = 0; i < 64; ++i) {
    if (!text.empty()) text += ' ';
    text += words[std::min(pick(rng), 9)];
  }
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t documents = argc > 1 ? std::stoul(argv[1]) : 20000;
  const std::size_t n_counters = argc > 2 ? std::stoul(argv[2]) : 8;

  libactor::actor_system sys;
  std::printf("libactor wordfreq: %zu documents, %zu counter actors, %u worker threads\n",
              documents, n_counters, sys.worker_count());

  std::vector<libactor::actor_ref> counters;
  for (std::size_t i = 0; i < n_counters; ++i) counters.push_back(sys.spawn<counter>());

  auto coordinator = sys.spawn([&counters](actor& self) -> behavior {
    for (auto& c : counters) self.monitor(c);
    auto ticks = std::make_shared<int>(0);
    self.send_every(50ms, progress_tick{});
    return {
        [&self, &counters](run r) -> task<result> {
          std::mt19937 rng(42);
          for (std::size_t i = 0; i < r.documents; ++i) {
            counters[i % counters.size()].send(document{make_document(rng)});
          }
          // Each counter answers after it handled every document sent
          // before the query: per-pair ordering is FIFO.
          result out;
          for (auto& c : counters) {
            auto part = co_await self.ask<counts>(c, count_query{}, 10s);
            if (!part) throw std::runtime_error("counter failed: " + part.err().to_string());
            for (auto& [w, n] : *part) out.total[w] += n;
          }
          co_return out;
        },
        [ticks](progress_tick) { ++*ticks; },
        [](const libactor::down_msg& d) {
          std::printf("counter %llu stopped: %s\n", static_cast<unsigned long long>(d.source.id()),
                      d.reason.to_string().c_str());
        },
    };
  });

  const auto t0 = std::chrono::steady_clock::now();
  auto answer = coordinator.ask<result>(run{documents}, 60s).get();
  const auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!answer) {
    std::printf("failed: %s\n", answer.err().to_string().c_str());
    return 1;
  }
  std::vector<std::pair<std::size_t, std::string>> ranked;
  std::size_t words = 0;
  for (auto& [w, n] : answer->total) {
    ranked.emplace_back(n, w);
    words += n;
  }
  std::sort(ranked.rbegin(), ranked.rend());
  std::printf("counted %zu words in %.3f s (%.1f M words/s)\n", words, secs, words / secs / 1e6);
  for (auto& [n, w] : ranked) std::printf("  %-8s %9zu\n", w.c_str(), n);
  const bool ok = words == documents * 64;
  std::printf("check: %zu words expected, %s\n", documents * 64, ok ? "ok" : "MISMATCH");

  sys.shutdown();
  const auto st = sys.stats();
  std::printf("actors spawned %llu, dead letters %llu, unhandled %llu\n",
              static_cast<unsigned long long>(st.spawned),
              static_cast<unsigned long long>(st.dead_letters),
              static_cast<unsigned long long>(st.unhandled));
  return ok ? 0 : 1;
}
