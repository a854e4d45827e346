// cluster: word counting spread over several nodes, surviving the loss of one.
//
//   cluster run [--workers N] [--chunks C] [--words W] [--kill-after K]
//   cluster worker --name NAME --secret-file F --coordinator HOST:PORT
//
// `run` is the demo: this process is the coordinator node. It starts N
// worker node processes, spawns counter actors on each through
// node::spawn_remote (and one locally), and hands out chunks of a generated
// corpus, a few at a time per counter, each as an ask. With --kill-after K it kills one worker
// process (SIGKILL) once K chunks are done: the monitors on that node's
// counters fire, its unanswered asks fail with node_down, and those chunks go
// to the surviving counters. At the end it compares the merged counts with a
// count made locally and prints what happened.

#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstdio>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <libactor/net/node.hpp>
#include "../common/cli.hpp"
#include "../common/process.hpp"
#include "../common/run.hpp"

using namespace std::chrono_literals;
using libactor::actor;
using libactor::actor_ref;
using libactor::behavior;
using libactor::task;

namespace cluster {

using counts = std::map<std::string, std::uint64_t>;

struct chunk {
  std::uint64_t index = 0;
  std::string text;
};
LIBACTOR_WIRE_TYPE(chunk, "cluster.chunk", index, text)

struct chunk_counts {
  std::uint64_t index = 0;
  counts words;
  std::string node;
};
LIBACTOR_WIRE_TYPE(chunk_counts, "cluster.chunk_counts", index, words, node)

counts count_words(const std::string& text) {
  counts c;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) ++c[text.substr(start, end - start)];
    start = end + 1;
  }
  return c;
}

/// Counts the words of each chunk it is asked about.
class counter : public actor {
 public:
  explicit counter(std::string node) : node_(std::move(node)) {}

 protected:
  behavior make_behavior() override {
    return {[this](const chunk& c) { return chunk_counts{c.index, count_words(c.text), node_}; }};
  }

 private:
  std::string node_;
};

/// A deterministic corpus: `chunks` chunks of `words` words from a Zipf-ish
/// vocabulary.
std::vector<std::string> make_corpus(std::size_t chunks, std::size_t words) {
  static const char* vocabulary[] = {"actor", "message", "mailbox", "node",   "scheduler", "worker",
                                     "link",  "monitor", "ask",     "reply",  "timer",     "handle",
                                     "frame", "secret",  "peer",    "socket", "queue",     "steal"};
  constexpr std::size_t n = sizeof vocabulary / sizeof vocabulary[0];
  std::mt19937_64 rng(42);
  std::vector<std::string> out;
  for (std::size_t c = 0; c < chunks; ++c) {
    std::string text;
    for (std::size_t w = 0; w < words; ++w) {
      // Word i with weight about 1/(i+1).
      std::size_t i = static_cast<std::size_t>(rng() % (n * n));
      i = static_cast<std::size_t>(std::sqrt(static_cast<double>(i)));
      text += vocabulary[n - 1 - std::min(i, n - 1)];
      text += ' ';
    }
    out.push_back(std::move(text));
  }
  return out;
}

struct go {};
struct kill_now {};
struct report_state {};
/// One chunk to ask a counter about (a message to self: each becomes its own
/// task, so many asks are in flight at once).
struct ask_chunk {
  actor_ref to;
  std::uint64_t index = 0;
};

struct run_result {
  counts total;
  std::uint64_t chunks_done = 0;
  std::uint64_t retried = 0;
  std::map<std::string, std::uint64_t> per_node;
  std::vector<std::string> events;
};

/// The coordinator: keeps `depth` asks in flight per live counter; a failed
/// ask puts its chunk back at the front of the queue; a counter that is down
/// gets no more work.
class coordinator : public actor {
 public:
  coordinator(std::vector<actor_ref> counters, std::vector<std::string> corpus,
              std::uint64_t kill_after, std::function<std::string()> kill,
              std::promise<run_result>* done)
      : counters_(std::move(counters)),
        corpus_(std::move(corpus)),
        kill_after_(kill_after),
        kill_(std::move(kill)),
        done_(done) {}

 protected:
  behavior make_behavior() override {
    for (auto& c : counters_) monitor(c);
    for (std::uint64_t i = 0; i < corpus_.size(); ++i) queue_.push_back(i);
    return {
        [this](go) { dispatch(); },
        [this](const libactor::down_msg& d) {
          if (dead_.insert(d.source).second) {
            result_.events.push_back("counter " + std::to_string(d.source.id()) +
                                     " is down: " + d.reason.to_string());
          }
          dispatch();
        },
        [this](kill_now) { result_.events.push_back(kill_()); },
        [this](report_state) {
          std::string s = "queued " + std::to_string(queue_.size()) + ", outstanding " +
                          std::to_string(outstanding_) + ", done " +
                          std::to_string(result_.chunks_done) + ", counters down " +
                          std::to_string(dead_.size()) + ";";
          for (auto& [c, n] : in_flight_) {
            s += " counter " + std::to_string(c.id()) + ": " + std::to_string(n) + " in flight";
          }
          return s;
        },
        [this](ask_chunk a) -> task<void> {
          // A named request, not a temporary in the co_await (see actor::ask).
          chunk request{a.index, corpus_[a.index]};
          auto r = co_await ask<chunk_counts>(a.to, std::move(request), 60s);
          --in_flight_[a.to];
          --outstanding_;
          if (r) {
            for (auto& [w, n] : r->words) result_.total[w] += n;
            ++result_.chunks_done;
            ++result_.per_node[r->node];
            if (result_.chunks_done == kill_after_ && kill_) self().send(kill_now{});
          } else {
            // The counter's node went away (or the ask timed out): the chunk
            // goes to another counter.
            ++result_.retried;
            queue_.push_front(a.index);
            dead_.insert(a.to);
          }
          dispatch();
        },
    };
  }

 private:
  void dispatch() {
    for (auto& c : counters_) {
      while (!dead_.contains(c) && in_flight_[c] < depth && !queue_.empty()) {
        const std::uint64_t i = queue_.front();
        queue_.pop_front();
        ++in_flight_[c];
        ++outstanding_;
        self().send(ask_chunk{c, i});
      }
    }
    if (queue_.empty() && outstanding_ == 0 && !finished_) {
      finished_ = true;
      done_->set_value(result_);
    }
    if (!queue_.empty() && outstanding_ == 0 && dead_.size() == counters_.size() && !finished_) {
      finished_ = true;
      result_.events.push_back("every counter is down; " + std::to_string(queue_.size()) +
                               " chunks left");
      done_->set_value(result_);
    }
  }

  static constexpr std::uint64_t depth = 2;
  std::vector<actor_ref> counters_;
  std::vector<std::string> corpus_;
  std::uint64_t kill_after_;
  std::function<std::string()> kill_;
  std::promise<run_result>* done_;
  std::deque<std::uint64_t> queue_;
  std::map<actor_ref, std::uint64_t> in_flight_;
  std::set<actor_ref> dead_;
  std::uint64_t outstanding_ = 0;
  bool finished_ = false;
  run_result result_;
};

}  // namespace cluster

namespace {

const char* const usage = R"(usage:
  cluster run [--workers N] [--chunks C] [--words W] [--kill-after K] [--timeout S]
      The demo. This process is the coordinator node; it starts N worker node
      processes (default 3), spawns a counter actor on each, and counts the
      words of C generated chunks (default 600) of W words each (default
      2000). With --kill-after K (default: a third of the chunks; 0 for
      none) it kills the last worker process once K chunks are counted: its
      unfinished chunks move to the surviving workers, and the result is
      checked against a local count. If the count is not done within S
      seconds (default 300), it prints where it stands and fails.
  cluster worker --name NAME --secret-file FILE --coordinator HOST:PORT
      One worker node (started by run). Prints "worker NAME ready".
)";

int run_worker(examples::flags& f) {
  libactor::net::node_config cfg;
  cfg.name = f.required("name");
  const auto [host, port] = f.endpoint("--coordinator", f.required("coordinator"));
  cfg.secret = f.secret();
  cfg.heartbeat_interval = 200ms;
  cfg.heartbeat_timeout = 1s;
  f.check_unused();
  examples::stop_signals stop;
  libactor::actor_system sys;
  libactor::net::node node(sys, cfg);
  node.register_actor_type<cluster::counter, std::string>("counter");
  if (auto r = node.connect(host, port, 30s); !r) {
    std::fprintf(stderr, "cluster worker: %s\n", r.err().to_string().c_str());
    return 1;
  }
  std::printf("worker %s ready\n", cfg.name.c_str());
  std::fflush(stdout);
  stop.wait();
  return 0;
}

int run_demo(examples::flags& f) {
  const auto workers = static_cast<std::size_t>(f.number("workers", 3, 2, 32));
  const auto chunks = static_cast<std::size_t>(f.number("chunks", 600, 1, 1'000'000));
  const auto words = static_cast<std::size_t>(f.number("words", 2000, 1, 1'000'000));
  const auto kill_after = static_cast<std::uint64_t>(
      f.number("kill-after", static_cast<long>(chunks / 3), 0, static_cast<long>(chunks)));
  const long timeout = f.number("timeout", 300, 1, 86400);
  f.check_unused();

  examples::run_secret secret("cluster");
  if (!secret.ok()) {
    std::fprintf(stderr, "cluster run: cannot write %s\n", secret.path().c_str());
    return 1;
  }

  libactor::actor_system sys;
  libactor::net::node_config cfg;
  cfg.name = "coordinator";
  cfg.secret = secret.secret();
  cfg.heartbeat_interval = 200ms;
  cfg.heartbeat_timeout = 1s;
  cfg.log = [](std::string_view line) {
    std::printf("  [net] %.*s\n", static_cast<int>(line.size()), line.data());
  };
  libactor::net::node node(sys, cfg);
  std::printf("coordinator listening on 127.0.0.1:%u; starting %zu worker nodes\n",
              static_cast<unsigned>(node.port()), workers);

  std::vector<std::unique_ptr<examples::child_process>> procs;
  std::vector<std::string> names;
  for (std::size_t i = 1; i <= workers; ++i) {
    names.push_back("worker-" + std::to_string(i));
    procs.push_back(std::make_unique<examples::child_process>(
        examples::self_path(),
        std::vector<std::string>{"worker", "--name", names.back(), "--secret-file", secret.path(),
                                 "--coordinator", "127.0.0.1:" + std::to_string(node.port())}));
  }
  std::vector<actor_ref> counters;
  for (std::size_t i = 0; i < workers; ++i) {
    auto line = procs[i]->line(30s);
    if (!line || *line != "worker " + names[i] + " ready") {
      std::fprintf(stderr, "cluster run: %s did not start\n", names[i].c_str());
      return 1;
    }
    // The worker's handshake is done on its side; wait until it is on ours.
    if (auto up = node.await_peer(names[i], 30s); !up) {
      std::fprintf(stderr, "cluster run: %s\n", up.err().to_string().c_str());
      return 1;
    }
    auto c = node.spawn_remote(names[i], "counter", names[i], 30s);
    if (!c) {
      std::fprintf(stderr, "cluster run: spawning on %s: %s\n", names[i].c_str(),
                   c.err().to_string().c_str());
      return 1;
    }
    std::printf("spawned counter %llu on %s (pid %d)\n", static_cast<unsigned long long>(c->id()),
                names[i].c_str(), static_cast<int>(procs[i]->pid()));
    counters.push_back(*c);
  }
  secret.forget();
  // The coordinator's node works too.
  counters.push_back(sys.spawn<cluster::counter>(std::string("coordinator")));
  std::printf("spawned counter %llu on coordinator\n",
              static_cast<unsigned long long>(counters.back().id()));

  const auto corpus = cluster::make_corpus(chunks, words);
  cluster::counts expected;
  for (auto& text : corpus) {
    for (auto& [w, n] : cluster::count_words(text)) expected[w] += n;
  }

  examples::child_process* victim = procs.back().get();
  const std::string victim_name = names.back();
  std::function<std::string()> kill;
  if (kill_after > 0) {
    kill = [victim, victim_name, kill_after] {
      const int pid = victim->pid();
      victim->stop(SIGKILL);
      return "killed " + victim_name + " (pid " + std::to_string(pid) + ", SIGKILL) after " +
             std::to_string(kill_after) + " chunks";
    };
  }
  std::promise<cluster::run_result> done;
  auto fut = done.get_future();
  const auto t0 = std::chrono::steady_clock::now();
  auto coord = sys.spawn<cluster::coordinator>(counters, corpus, kill_after, kill, &done);
  coord.send(cluster::go{});
  if (fut.wait_for(std::chrono::seconds(timeout)) != std::future_status::ready) {
    auto state = coord.ask<std::string>(cluster::report_state{}, 10s).get();
    std::printf("result: INCOMPLETE (no result within %ld s; %s)\n", timeout,
                state ? state->c_str() : state.err().to_string().c_str());
    return 1;
  }
  const auto r = fut.get();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (auto& e : r.events) std::printf("event: %s\n", e.c_str());
  std::printf("chunks: %llu counted in %.2f s, %llu moved to another node after a failure\n",
              static_cast<unsigned long long>(r.chunks_done), secs,
              static_cast<unsigned long long>(r.retried));
  for (auto& [n, k] : r.per_node) {
    std::printf("  %s counted %llu chunks\n", n.c_str(), static_cast<unsigned long long>(k));
  }
  std::uint64_t total = 0;
  for (auto& [w, n] : r.total) total += n;
  const bool correct = r.total == expected && r.chunks_done == chunks;
  std::printf("words: %llu counted, %llu expected\n", static_cast<unsigned long long>(total),
              static_cast<unsigned long long>(chunks * words));
  std::printf("result: %s\n", correct ? "correct (matches the local count)" : "WRONG");
  return correct ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return examples::run_modes("cluster", argc, argv, usage,
                             {{"run", run_demo}, {"worker", run_worker}});
}
