import Glibc
import Synchronization

/// Arena chunks of flushed memtables, kept mapped for the next memtable instead of being
/// returned to the kernel.
///
/// Why: a fresh chunk is paid for again on first touch. The kernel zeroes it, and in a VM
/// whose freed memory goes back to the host (balloon free-page reporting, as on this machine's
/// Firecracker), the host faults each page in again: `perf` on a mount renaming 4 KiB files
/// put ~5 µs per 4 KiB entry into `clear_page_erms` under `Memtable.add`, and a C loop
/// measured 5.3 µs per 4 KiB page for memory never touched before against 0.36 µs to rewrite
/// a page already in use. A memtable never reads bytes it did not write, so a reused chunk
/// needs no clearing.
///
/// Memory: a chunk enters the pool only when a memtable is freed, and the next memtable takes
/// pooled chunks before mapping new ones, so the process never holds more chunks than at its
/// previous peak (active plus immutable memtables). `capacity` bounds what stays mapped when
/// nothing takes them; `drain()` (at `SliceDB.close`) unmaps them.
enum ChunkPool {
    /// Bytes per chunk; a chunk is 2 MiB-aligned so it can be one transparent huge page.
    static let chunkSize = 2 << 20
    /// 64 MiB: one default memtable's worth.
    static let capacity = 32

    /// Stored as addresses: raw pointers are not `Sendable`.
    private static let free = Mutex<[UInt]>([])

    /// A chunk: pooled if there is one, else freshly mapped.
    static func take() -> UnsafeMutableRawPointer {
        if let address = free.withLock({ $0.popLast() }) { return UnsafeMutableRawPointer(bitPattern: address)! }
        return map()
    }

    /// Gives chunks back: pooled up to `capacity`, the rest unmapped.
    static func give(_ chunks: [UnsafeMutableRawPointer]) {
        let addresses = chunks.map { UInt(bitPattern: $0) }
        let kept = free.withLock { pool -> Int in
            let n = min(addresses.count, capacity - pool.count)
            pool.append(contentsOf: addresses[0..<n])
            return n
        }
        for c in chunks[kept...] { munmap(c, chunkSize) }
    }

    /// Unmaps every pooled chunk.
    static func drain() {
        let all = free.withLock { pool -> [UInt] in
            defer { pool.removeAll() }
            return pool
        }
        for a in all { munmap(UnsafeMutableRawPointer(bitPattern: a), chunkSize) }
    }

    /// A 2 MiB-aligned chunk straight from the kernel. Why not malloc: glibc raises its mmap
    /// threshold after the first large free, so later chunks came from the heap and a flushed
    /// memtable's memory was never returned (the heap peaked at 308 MiB over a db_bench run,
    /// 103 MiB with mapped chunks).
    /// Aligned so the kernel can back it with one huge page (`MADV_HUGEPAGE`, a hint).
    private static func map() -> UnsafeMutableRawPointer {
        let size = chunkSize
        guard let raw = mmap(nil, 2 * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            raw != MAP_FAILED
        else { fatalError("out of memory for a memtable chunk") }
        let address = UInt(bitPattern: raw)
        let aligned = (address + UInt(size) - 1) & ~(UInt(size) - 1)
        let head = Int(aligned - address)
        if head > 0 { munmap(raw, head) }
        if size - head > 0 { munmap(UnsafeMutableRawPointer(bitPattern: aligned + UInt(size))!, size - head) }
        let chunk = UnsafeMutableRawPointer(bitPattern: aligned)!
        _ = madvise(chunk, size, MADV_HUGEPAGE)
        return chunk
    }
}
