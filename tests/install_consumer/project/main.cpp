#include <libactor/libactor.hpp>

#include <cstdio>

int main() {
  libactor::actor_system sys;
  auto doubler = sys.spawn(
      [](libactor::actor&) -> libactor::behavior { return {[](int x) { return 2 * x; }}; });
  auto r = doubler.ask<int>(21, std::chrono::seconds(10)).get();
  if (!r) return 1;
  std::printf("consumer: %d\n", *r);
  return 0;
}
