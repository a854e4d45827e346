// Message memory pool. The design and its proof sketch are in
// include/libactor/detail/pool.hpp.

#include "libactor/detail/pool.hpp"

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <iterator>
#include <mutex>
#include <new>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define LIBACTOR_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define LIBACTOR_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define LIBACTOR_POISON(p, n) ((void)(p), (void)(n))
#define LIBACTOR_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace libactor::detail::pool {
namespace {

struct block {
  block* next;
};

struct heap;

// Every chunk starts with this header; blocks follow. Chunks are aligned to
// chunk_size, so a block's chunk is found by masking its address.
struct chunk_header {
  heap* home;
  chunk_header* next;  // the home heap's chunks, for reachability
  int size_class;
};
constexpr std::size_t header_bytes = 64;
static_assert(sizeof(chunk_header) <= header_bytes);
static_assert(std::size(class_size) == class_count);
static_assert((chunk_size & (chunk_size - 1)) == 0, "chunks are found by masking");
static_assert(header_bytes % 16 == 0 && class_size[0] % 16 == 0, "blocks are 16-byte aligned");
static_assert(std::atomic<block*>::is_always_lock_free);

struct alignas(64) remote_list {
  // Any thread pushes a chain (CAS); the owning heap takes all (exchange).
  std::atomic<block*> head{nullptr};
};

struct heap {
  // Owner-only state.
  block* local[class_count] = {};
  char* bump[class_count] = {};
  char* bump_end[class_count] = {};
  // Outgoing batches of blocks that belong to other heaps: a receiver fed by
  // several sender threads keeps one batch per home instead of flushing on
  // every switch.
  struct pending_batch {
    heap* home = nullptr;
    int size_class = 0;
    int count = 0;
    block* head = nullptr;
    block* tail = nullptr;
  };
  static constexpr int pending_slots = 4;
  pending_batch pending[pending_slots];
  int next_victim = 0;
  chunk_header* chunks = nullptr;  // every chunk this heap carved
  std::size_t chunk_bytes = 0;     // their total size
  std::chrono::steady_clock::time_point last_trim{};
  // Shared with other threads.
  remote_list remote[class_count];
};

// Owns every heap (and through them every chunk); lives until exit (never
// destroyed, so no thread can outlive it). Memory stays reachable, so leak
// checkers do not report it. Touched when a thread starts or ends, never when
// a heap grows.
struct registry {
  std::mutex mu;
  std::vector<heap*> all;
  std::vector<heap*> idle;  // heaps of threads that ended, ready for adoption
};

registry& reg() {
  static registry* r = new registry;  // intentionally leaked; see above
  return *r;
}

thread_local heap* t_heap = nullptr;

void push_remote(heap* home, int sc, block* first, block* last) noexcept {
  remote_list& r = home->remote[sc];
  // relaxed: only the CAS's first guess.
  block* old = r.head.load(std::memory_order_relaxed);
  do {
    last->next = old;
    // release: publishes the blocks' link words (and the freeing thread's
    // last reads of the messages) to the owner's acquire exchange in allocate().
  } while (!r.head.compare_exchange_weak(old, first, std::memory_order_release,
                                         std::memory_order_relaxed));
}

void flush_batch(heap::pending_batch& p) noexcept {
  if (!p.head) return;
  push_remote(p.home, p.size_class, p.head, p.tail);
  p = heap::pending_batch{};
}

void flush_pending(heap* h) noexcept {
  for (auto& p : h->pending) flush_batch(p);
}

// Returns the heap to the idle list when its thread ends.
struct heap_release {
  ~heap_release() {
    heap* h = t_heap;
    if (!h) return;
    flush_pending(h);
    t_heap = nullptr;
    std::lock_guard lock(reg().mu);
    reg().idle.push_back(h);
  }
};
thread_local heap_release t_release;

heap* this_heap() {
  heap* h = t_heap;
  if (h) return h;
  {
    std::lock_guard lock(reg().mu);
    if (!reg().idle.empty()) {
      h = reg().idle.back();
      reg().idle.pop_back();
    }
  }
  if (!h) {
    h = new heap;
    std::lock_guard lock(reg().mu);
    reg().all.push_back(h);
  }
  t_heap = h;
  (void)&t_release;  // odr-use so its destructor runs at thread exit
  return h;
}

void* refill(heap* h, int sc) {
  const std::size_t size = class_size[sc];
  // Compared as a distance: a fresh heap's bump pointers are null, and
  // null + size is undefined (null - null is 0).
  if (static_cast<std::size_t>(h->bump_end[sc] - h->bump[sc]) < size) {
    void* c = std::aligned_alloc(chunk_size, chunk_size);
    if (!c) throw std::bad_alloc();
    auto* hdr = static_cast<chunk_header*>(c);
    hdr->home = h;
    hdr->size_class = sc;
    hdr->next = h->chunks;  // owner-only list: no lock on the send path
    h->chunks = hdr;
    h->chunk_bytes += chunk_size;
    h->bump[sc] = static_cast<char*>(c) + header_bytes;
    h->bump_end[sc] = static_cast<char*>(c) + chunk_size;
  }
  void* p = h->bump[sc];
  h->bump[sc] += size;
  return p;
}

}  // namespace

// Out of line, so the fast paths below need no register saves.
[[gnu::noinline]] void* allocate_slow(int sc) {
  heap* h = this_heap();
  block* b = h->local[sc];
  if (!b) {
    // relaxed pre-check keeps the common empty case free of RMWs.
    if (h->remote[sc].head.load(std::memory_order_relaxed) != nullptr) {
      // acquire: pairs with the release CAS in push_remote().
      b = h->remote[sc].head.exchange(nullptr, std::memory_order_acquire);
    }
    if (!b) {
      void* p = refill(h, sc);
      LIBACTOR_UNPOISON(p, class_size[sc]);
      return p;
    }
  }
  LIBACTOR_UNPOISON(b, sizeof(block));
  h->local[sc] = b->next;
  LIBACTOR_UNPOISON(b, class_size[sc]);
  return b;
}

void* allocate(int sc) {
  heap* h = t_heap;
  if (h != nullptr) [[likely]] {
    block* b = h->local[sc];
    if (b != nullptr) [[likely]] {
      LIBACTOR_UNPOISON(b, sizeof(block));
      h->local[sc] = b->next;
      LIBACTOR_UNPOISON(b, class_size[sc]);
      return b;
    }
  }
  return allocate_slow(sc);
}

[[gnu::noinline]] void deallocate_remote(block* b, heap* home, heap* h, int sc) noexcept;

void deallocate(void* p, int sc) noexcept {
  auto* hdr = reinterpret_cast<chunk_header*>(reinterpret_cast<std::uintptr_t>(p) &
                                              ~(std::uintptr_t{chunk_size} - 1));
  heap* home = hdr->home;
  auto* b = static_cast<block*>(p);
  heap* h = t_heap;
  if (home == h) [[likely]] {
    b->next = h->local[sc];
    h->local[sc] = b;
    LIBACTOR_POISON(reinterpret_cast<char*>(b) + sizeof(block), class_size[sc] - sizeof(block));
    return;
  }
  deallocate_remote(b, home, h, sc);
}

void deallocate_remote(block* b, heap* home, heap* h, int sc) noexcept {
  if (!h) {
    // This thread has no heap (it never allocated, or it is exiting and its
    // heap was released): hand the block straight back to its home.
    push_remote(home, sc, b, b);
    return;
  }
  heap::pending_batch* slot = nullptr;
  for (auto& batch : h->pending) {
    if (batch.home == home && batch.size_class == sc) {
      slot = &batch;
      break;
    }
  }
  if (slot == nullptr) {
    for (auto& batch : h->pending) {
      if (batch.head == nullptr) {
        slot = &batch;
        break;
      }
    }
  }
  if (slot == nullptr) {
    slot = &h->pending[h->next_victim];
    h->next_victim = (h->next_victim + 1) % heap::pending_slots;
    flush_batch(*slot);
  }
  if (slot->head == nullptr) {
    slot->home = home;
    slot->size_class = sc;
    slot->tail = b;
    b->next = nullptr;
  } else {
    b->next = slot->head;
  }
  slot->head = b;
  LIBACTOR_POISON(reinterpret_cast<char*>(b) + sizeof(block), class_size[sc] - sizeof(block));
  if (++slot->count == remote_batch) flush_batch(*slot);
}

void flush_thread_cache() noexcept {
  if (heap* h = t_heap) flush_pending(h);
}

namespace {
chunk_header* chunk_of(const void* p) noexcept {
  return reinterpret_cast<chunk_header*>(reinterpret_cast<std::uintptr_t>(p) &
                                         ~(std::uintptr_t{chunk_size} - 1));
}
}  // namespace

std::size_t trim(std::size_t keep) noexcept {
  heap* h = t_heap;
  if (h == nullptr || h->chunk_bytes <= keep) return 0;
  try {
    // Blocks other threads gave back join the local lists.
    for (int sc = 0; sc < class_count; ++sc) {
      // relaxed pre-check, acquire take: as in allocate_slow().
      if (h->remote[sc].head.load(std::memory_order_relaxed) == nullptr) continue;
      block* r = h->remote[sc].head.exchange(nullptr, std::memory_order_acquire);
      if (r == nullptr) continue;
      block* tail = r;
      while (tail->next != nullptr) tail = tail->next;
      tail->next = h->local[sc];
      h->local[sc] = r;
    }
    // Free blocks per chunk. A chunk whose every block is here is unused:
    // the bump chunk of a class counts only when carved to its end.
    std::unordered_map<chunk_header*, std::uint32_t> free_in;
    for (int sc = 0; sc < class_count; ++sc) {
      for (block* b = h->local[sc]; b != nullptr; b = b->next) ++free_in[chunk_of(b)];
    }
    std::unordered_set<chunk_header*> gone;
    std::size_t freed = 0;
    for (const auto& [c, n] : free_in) {
      if (h->chunk_bytes - freed <= keep) break;
      const int sc = c->size_class;
      if ((chunk_size - header_bytes) / class_size[sc] != n) continue;
      gone.insert(c);
      freed += chunk_size;
    }
    if (gone.empty()) return 0;
    for (int sc = 0; sc < class_count; ++sc) {
      block** link = &h->local[sc];
      while (*link != nullptr) {
        if (gone.count(chunk_of(*link)) != 0) {
          *link = (*link)->next;
        } else {
          link = &(*link)->next;
        }
      }
      if (h->bump[sc] != nullptr && gone.count(chunk_of(h->bump[sc] - 1)) != 0) {
        h->bump[sc] = h->bump_end[sc] = nullptr;
      }
    }
    for (chunk_header** link = &h->chunks; *link != nullptr;) {
      if (gone.count(*link) != 0) {
        *link = (*link)->next;
      } else {
        link = &(*link)->next;
      }
    }
    for (chunk_header* c : gone) {
      LIBACTOR_UNPOISON(c, chunk_size);
      std::free(c);
    }
    h->chunk_bytes -= freed;
    return freed;
  } catch (...) {
    return 0;  // no memory for the bookkeeping: nothing changed, try later
  }
}

void trim_if_due() noexcept {
  heap* h = t_heap;
  if (h == nullptr || h->chunk_bytes <= retain_bytes) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - h->last_trim < std::chrono::seconds(1)) return;
  h->last_trim = now;
  (void)trim(retain_bytes);
}

std::size_t heap_bytes() noexcept {
  heap* h = t_heap;
  return h == nullptr ? 0 : h->chunk_bytes;
}

}  // namespace libactor::detail::pool
