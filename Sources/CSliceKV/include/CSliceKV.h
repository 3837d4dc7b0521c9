#ifndef CSLICEKV_H
#define CSLICEKV_H
#include <stddef.h>
#include <stdint.h>

/// Extends a CRC32C (Castagnoli) with `n` bytes. Start with crc = 0.
/// Uses SSE4.2 when the CPU has it (7+ GB/s), a slicing-by-8 table otherwise.
uint32_t slice_crc32c_extend(uint32_t crc, const void *data, size_t n);

/// 1 when the hardware path is in use.
int slice_crc32c_hardware(void);

/// Starts writeback of a file range without waiting for it (Linux `sync_file_range` with
/// SYNC_FILE_RANGE_WRITE, which needs _GNU_SOURCE and so cannot be imported from Glibc).
int slice_start_writeback(int fd, int64_t offset, int64_t count);

/// Acquire load / release store of a pointer-sized word in raw memory (the memtable's skiplist
/// links): C11 atomics, because Swift's `Atomic` cannot live at an address inside an arena.
/// A reader that loads a link with acquire sees the node it points to fully written.
static inline uintptr_t slice_load_acquire(const void *p) {
    return __atomic_load_n((const uintptr_t *)p, __ATOMIC_ACQUIRE);
}

static inline void slice_store_release(void *p, uintptr_t v) {
    __atomic_store_n((uintptr_t *)p, v, __ATOMIC_RELEASE);
}

static inline uintptr_t slice_load_relaxed(const void *p) {
    return __atomic_load_n((const uintptr_t *)p, __ATOMIC_RELAXED);
}

static inline void slice_store_relaxed(void *p, uintptr_t v) {
    __atomic_store_n((uintptr_t *)p, v, __ATOMIC_RELAXED);
}

/// A spin-wait hint (x86 `pause`): lets the other hyperthread run and saves power while a
/// thread polls a flag another core is about to set.
static inline void slice_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/// 1 when all `n` bytes at `p` are zero (recovery scans the preallocated tail of a mapped WAL).
int slice_is_zero(const void *p, size_t n);

/// Sets the calling thread's CPU priority (Linux: nice applies per thread) and returns the
/// previous one. Background compaction uses it so that foreground work keeps a core.
int slice_set_thread_nice(int nice);

/* Starts loading the cache line at p for writing (a hint; never faults). */
static inline void slice_prefetch_write(const void *p) { __builtin_prefetch(p, 1, 3); }

/* Starts loading the cache line at p for reading (a hint; never faults). */
static inline void slice_prefetch_read(const void *p) { __builtin_prefetch(p, 0, 3); }

static inline void slice_fetch_or_relaxed(void *p, uintptr_t bits) {
    __atomic_fetch_or((uintptr_t *)p, bits, __ATOMIC_RELAXED);
}

/// Relaxed atomic add to a word in raw memory; returns the value before (`StripedCounter`).
static inline intptr_t slice_fetch_add_relaxed(void *p, intptr_t n) {
    return __atomic_fetch_add((intptr_t *)p, n, __ATOMIC_RELAXED);
}

#endif
