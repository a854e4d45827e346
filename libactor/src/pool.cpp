// Message memory pool. The design and its proof sketch are in
// include/libactor/detail/pool.hpp.

#include "libactor/detail/pool.hpp"

#include <atomic>
#include <cstdlib>
#include <iterator>
#include <mutex>
#include <new>
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
  // Outgoing batch of blocks that belong to another heap.
  heap* pending_home = nullptr;
  int pending_class = 0;
  int pending_count = 0;
  block* pending_head = nullptr;
  block* pending_tail = nullptr;
  // Shared with other threads.
  remote_list remote[class_count];
};

// Owns every heap and chunk; lives until exit (never destroyed, so no thread
// can outlive it). Memory stays reachable, so leak checkers do not report it.
struct registry {
  std::mutex mu;
  std::vector<heap*> idle;  // heaps of threads that ended, ready for adoption
  std::vector<void*> chunks;
};

registry& reg() {
  static registry* r = new registry;  // intentionally leaked; see above
  return *r;
}

thread_local heap* t_heap = nullptr;

void flush_pending(heap* h) noexcept {
  if (!h->pending_head) return;
  remote_list& r = h->pending_home->remote[h->pending_class];
  // relaxed: only the CAS's first guess.
  block* old = r.head.load(std::memory_order_relaxed);
  do {
    h->pending_tail->next = old;
    // release: publishes the blocks' link words (and the receiver's last
    // reads of the messages) to the owner's acquire exchange in allocate().
  } while (!r.head.compare_exchange_weak(old, h->pending_head, std::memory_order_release,
                                         std::memory_order_relaxed));
  h->pending_head = h->pending_tail = nullptr;
  h->pending_home = nullptr;
  h->pending_count = 0;
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
  if (!h) h = new heap;
  t_heap = h;
  (void)&t_release;  // odr-use so its destructor runs at thread exit
  return h;
}

void* refill(heap* h, int sc) {
  const std::size_t size = class_size[sc];
  if (h->bump[sc] + size > h->bump_end[sc]) {
    void* c = std::aligned_alloc(chunk_size, chunk_size);
    if (!c) throw std::bad_alloc();
    {
      std::lock_guard lock(reg().mu);
      reg().chunks.push_back(c);
    }
    auto* hdr = static_cast<chunk_header*>(c);
    hdr->home = h;
    hdr->size_class = sc;
    h->bump[sc] = static_cast<char*>(c) + header_bytes;
    h->bump_end[sc] = static_cast<char*>(c) + chunk_size;
  }
  void* p = h->bump[sc];
  h->bump[sc] += size;
  return p;
}

}  // namespace

void* allocate(int sc) {
  heap* h = this_heap();
  block* b = h->local[sc];
  if (!b) {
    // relaxed pre-check keeps the common empty case free of RMWs.
    if (h->remote[sc].head.load(std::memory_order_relaxed) != nullptr) {
      // acquire: pairs with the release CAS in flush_pending().
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

void deallocate(void* p, int sc) noexcept {
  auto* hdr = reinterpret_cast<chunk_header*>(reinterpret_cast<std::uintptr_t>(p) &
                                              ~(std::uintptr_t{chunk_size} - 1));
  heap* home = hdr->home;
  auto* b = static_cast<block*>(p);
  heap* h = t_heap;
  if (home == h) {
    b->next = h->local[sc];
    h->local[sc] = b;
    LIBACTOR_POISON(reinterpret_cast<char*>(b) + sizeof(block), class_size[sc] - sizeof(block));
    return;
  }
  if (!h) {
    // This thread has no heap (it never allocated, or it is exiting and its
    // heap was released): hand the block straight back to its home.
    remote_list& r = home->remote[sc];
    // relaxed: only the CAS's first guess.
    block* old = r.head.load(std::memory_order_relaxed);
    do {
      b->next = old;
      // release: as in flush_pending().
    } while (!r.head.compare_exchange_weak(old, b, std::memory_order_release,
                                           std::memory_order_relaxed));
    return;
  }
  if (h->pending_home != home || h->pending_class != sc || h->pending_count == remote_batch) {
    flush_pending(h);
    h->pending_home = home;
    h->pending_class = sc;
    h->pending_tail = b;
    b->next = nullptr;
  } else {
    b->next = h->pending_head;
  }
  h->pending_head = b;
  ++h->pending_count;
  LIBACTOR_POISON(reinterpret_cast<char*>(b) + sizeof(block), class_size[sc] - sizeof(block));
}

void flush_thread_cache() noexcept {
  if (heap* h = t_heap) flush_pending(h);
}

}  // namespace libactor::detail::pool
