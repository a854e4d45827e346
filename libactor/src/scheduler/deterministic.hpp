#pragma once
// The deterministic scheduler: no threads; the caller runs one activation at
// a time, and the next actor is chosen among all runnable ones by a seeded
// PRNG. The same seed and the same inputs give the same interleaving, so a
// test can explore many interleavings by varying the seed and replay a
// failing one exactly.

#include <cstdint>
#include <mutex>
#include <random>
#include <vector>

#include "scheduler/scheduler.hpp"

namespace libactor::detail {

class deterministic_scheduler final : public scheduler {
 public:
  explicit deterministic_scheduler(std::uint64_t seed) : rng_(seed) {}

  void start() override {}
  void schedule(actor* a) noexcept override;
  void stop() noexcept override {}
  [[nodiscard]] unsigned workers() const noexcept override { return 0; }

  /// Runs one activation; false when nothing is runnable.
  bool run_once();

 private:
  // A mutex only because schedule() may be called from a foreign thread
  // (e.g. a timer of a real-time component); runs are single-threaded.
  std::mutex mu_;
  std::vector<actor*> runnable_;
  std::mt19937_64 rng_;
};

}  // namespace libactor::detail
