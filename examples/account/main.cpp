// The example of README.md, built and run by CTest.

#include <cstdio>
#include <libactor/libactor.hpp>

using namespace std::chrono_literals;

struct deposit {
  int amount;
};
struct balance {};

// A class actor: private state and handlers.
class account : public libactor::actor {
 protected:
  libactor::behavior make_behavior() override {
    return {
        [this](deposit d) { total_ += d.amount; },
        [this](balance) { return total_; },  // the return value is the reply
    };
  }

 private:
  int total_ = 0;
};

int main() {
  libactor::actor_system sys;
  auto acct = sys.spawn<account>();

  // A function actor whose handler is a coroutine: it awaits a reply
  // without blocking its worker thread.
  auto auditor = sys.spawn([acct](libactor::actor& self) -> libactor::behavior {
    return {[&self, acct](balance) -> libactor::task<int> {
      auto b = co_await self.ask<int>(acct, balance{}, 1s);
      co_return b ? *b : -1;
    }};
  });

  acct.send(deposit{30});
  acct.send(deposit{12});
  auto r = auditor.ask<int>(balance{}, 1s).get();  // from outside an actor
  if (r)
    std::printf("balance: %d\n", *r);  // balance: 42
  else
    std::printf("failed: %s\n", r.err().to_string().c_str());
}
