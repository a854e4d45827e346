#pragma once
/// @file
/// Message memory: a per-thread, size-class block pool with remote free lists.
///
/// ## Purpose
/// Every message is one block. A message is allocated by its sender's thread
/// and freed by its receiver's thread, so a general-purpose allocator would pay
/// a cross-thread free (a lock or an atomic on a shared arena) per message. This
/// pool makes the steady state cost one pointer pop on the sender and, on the
/// receiver, a local list append that is handed back to the sender's heap in
/// batches of up to `remote_batch` blocks with a single CAS.
///
/// ## Algorithm
/// Each thread owns a `heap` (the design of mimalloc's thread-local heaps and
/// snmalloc's message passing of frees). Blocks are carved from 64 KiB chunks
/// aligned to their size, whose header names the owning heap, so `deallocate`
/// finds the home heap by masking the pointer. A heap has, per size class:
/// - `local`: a plain singly linked free list, touched only by the owner;
/// - `remote`: a Treiber-style stack that any thread pushes a chain onto with
///   one CAS and the owner empties with one `exchange`. Only whole-list takes
///   happen, so the stack has no ABA problem.
/// A thread that frees blocks of another heap collects them in a pending chain
/// (one home and size class at a time) and pushes the chain when it is full,
/// when the home changes, or when the thread calls `flush_thread_cache()`
/// (workers do before they park).
///
/// ## Progress and memory
/// allocate/deallocate are lock-free; the owner's fast paths are wait-free.
/// A heap that must grow calls aligned_alloc (no lock of ours). Memory goes
/// back to the system by trim(), which the owner runs on a cold path (a
/// worker about to park calls trim_if_due()): the chunks whose blocks are
/// all in the owner's free lists are freed, down to `retain_bytes` per heap.
/// A chunk with one block still in use (or on its way back from another
/// thread) stays. A heap whose thread ends is parked with its memory and
/// adopted by the next new thread. Payloads larger than the largest class
/// use operator new.
///
/// ## Threads
/// Any thread may call any function here.

#include <cstddef>
#include <cstdint>

#include "libactor/export.hpp"

namespace libactor::detail::pool {

/// Block sizes in bytes. A message header is 48 bytes, so the classes fit
/// payloads of 16, 80, 208 and 464 bytes.
inline constexpr std::size_t class_size[] = {64, 128, 256, 512};
inline constexpr int class_count = 4;
inline constexpr std::size_t chunk_size = 64 * 1024;
inline constexpr int remote_batch = 64;

/// The size class for `bytes`, or -1 when the block is too large for the pool.
[[nodiscard]] constexpr int size_class_for(std::size_t bytes) noexcept {
  for (int i = 0; i < class_count; ++i) {
    if (bytes <= class_size[i]) return i;
  }
  return -1;
}

/// A block of `class_size[sc]` bytes, aligned to 16. Throws std::bad_alloc.
LIBACTOR_EXPORT void* allocate(int sc);
/// Returns a block obtained from allocate(sc) on any thread.
LIBACTOR_EXPORT void deallocate(void* block, int sc) noexcept;
/// Pushes this thread's pending remote frees to their home heaps.
LIBACTOR_EXPORT void flush_thread_cache() noexcept;

/// Bytes a heap keeps carved when trim_if_due() runs: a burst that grew it
/// past this gives the rest back once its blocks are free.
inline constexpr std::size_t retain_bytes = std::size_t{16} << 20;
/// Frees this thread's chunks whose blocks are all free, until the heap
/// holds at most `keep` bytes of chunks. Returns the bytes freed. O(free
/// blocks); owner thread only.
LIBACTOR_EXPORT std::size_t trim(std::size_t keep) noexcept;
/// trim(retain_bytes), at most once a second per thread, and only when the
/// heap holds more than retain_bytes.
LIBACTOR_EXPORT void trim_if_due() noexcept;
/// Bytes of chunks this thread's heap holds (carved, in use or free).
LIBACTOR_EXPORT std::size_t heap_bytes() noexcept;

}  // namespace libactor::detail::pool
