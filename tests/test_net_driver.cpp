// The node's event loop as the actor system's I/O driver (asio_driver in
// net/src/node_impl.hpp): idle workers wait in it, and the one inside runs
// what the events make runnable. Events that are ready together must not
// wait for that worker while the others sleep.

#include <catch2/catch.hpp>

#include <libactor/libactor.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <vector>

#include "libactor/detail/driver.hpp"
#include "node_impl.hpp"

using namespace libactor;
using namespace std::chrono_literals;

TEST_CASE("driver: actors made runnable by events ready together run on every worker",
          "[net][driver]") {
  namespace asio = boost::asio;
  constexpr int actors_n = 8;
  actor_system sys{system_config{.workers = 2}};
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  net::detail::asio_driver drv(io);
  REQUIRE(libactor::detail::install_driver(sys, &drv));
  // Each handler waits (with a deadline) until another one runs at the
  // same time: with both workers running the actors, pairs meet at once;
  // with one worker left to run them all, the first waits out its deadline.
  std::mutex mu;
  std::condition_variable cv;
  int running = 0;
  int met = 0;
  int finished = 0;
  std::vector<actor_ref> actors;
  for (int i = 0; i < actors_n; ++i) {
    actors.push_back(sys.spawn([&](actor&) -> behavior {
      return {[&](int) {
        std::unique_lock lock(mu);
        ++running;
        cv.notify_all();
        if (cv.wait_for(lock, 2s, [&] { return running >= 2 || finished + running == actors_n; }) &&
            running >= 2) {
          ++met;
        }
        --running;
        ++finished;
        cv.notify_all();
      }};
    }));
  }
  for (int trial = 0; trial < 4; ++trial) {
    INFO("trial " << trial);
    {
      std::lock_guard lock(mu);
      finished = met = 0;
    }
    // A handler holds the driver: the worker in it waits there; the other
    // one, idle since the last trial, sleeps (the driver is taken).
    std::promise<void> release;
    auto released = release.get_future().share();
    std::promise<void> entered;
    asio::post(io, [&entered, released] {
      entered.set_value();
      released.wait();
    });
    REQUIRE(entered.get_future().wait_for(10s) == std::future_status::ready);
    // Eight events ready at once, as one epoll_wait returns eight readable
    // sockets: each makes one actor runnable.
    for (auto& a : actors) asio::post(io, [a] { a.send(1); });
    release.set_value();
    std::unique_lock lock(mu);
    REQUIRE(cv.wait_for(lock, 30s, [&] { return finished == actors_n; }));
    // Every handler but a last odd one met another running beside it.
    CHECK(met >= actors_n - 1);
  }
  libactor::detail::remove_driver(sys, &drv);
  guard.reset();
  io.run();
  sys.shutdown();
}
