#pragma once
// Asymmetric memory barriers: a cheap "light" barrier for a hot path and an
// expensive "heavy" one for a rare path, which together give what a full
// fence on both sides would (the technique of folly's asymmetric barriers,
// built on Linux's membarrier(2)).
//
// A Dekker handshake (each side stores its flag, then loads the other's)
// needs StoreLoad ordering on both sides. When the heavy side calls
// membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED), every running thread of the
// process executes a full memory barrier before the call returns; a thread
// that is not running has passed a context switch, which is one. So the
// light side only has to keep the compiler from reordering its store and
// load (a signal fence). Where membarrier cannot be registered (an old
// kernel, a seccomp filter), both sides use a full fence: correct, slower on
// the hot path.
//
// init_asymmetric_barriers() must run before the threads that use the light
// barrier start (worker_pool's constructor calls it); the mode never changes
// afterwards, so both sides always agree on it.
//
// ThreadSanitizer models neither fences nor membarrier: under it, callers
// use their symmetric variant (seq_cst read-modify-writes); see run_next.hpp.

#include <atomic>

namespace libactor::detail {

/// Set once (false to true) by init_asymmetric_barriers(). relaxed loads:
/// it is written before the threads that read it are started.
inline std::atomic<bool> g_asymmetric_barriers{false};

/// Registers this process for membarrier(2) if the kernel allows it.
void init_asymmetric_barriers() noexcept;

/// The hot side. Orders this thread's earlier stores before its later
/// loads, as seen by a thread that calls heavy_barrier().
inline void light_barrier() noexcept {
  if (g_asymmetric_barriers.load(std::memory_order_relaxed)) {
    std::atomic_signal_fence(std::memory_order_seq_cst);
  } else {
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
}

/// The rare side: a system call that makes every running thread of the
/// process execute a full memory barrier (a fence without membarrier).
void heavy_barrier() noexcept;

}  // namespace libactor::detail
