import CSliceKV
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A statistics counter that readers on every core add to without sharing a cache line.
///
/// An `Atomic<Int>` that every get increments is one cache line bouncing between cores: with
/// five such counters on the read path (gets, hits, filter checks, block cache hits, block
/// reads), two reader threads measured no faster than one. Here each thread adds to one of
/// `stripes` slots, 64 bytes apart, picked by a hash of its thread id; `load` sums the slots
/// (statistics only, so a sum that is not one instant is fine). RocksDB's `CoreLocalArray`
/// statistics do the same.
///
/// Same call shapes as `Atomic<Int>` (`add`, `wrappingAdd`, `load`), so counters can switch.
final class StripedCounter: @unchecked Sendable {
    static let stripes = 16
    private static let stride = 64
    private let slots: UnsafeMutableRawPointer

    init(_ initial: Int = 0) {
        slots = .allocate(byteCount: StripedCounter.stripes * StripedCounter.stride, alignment: StripedCounter.stride)
        slots.initializeMemory(as: UInt8.self, repeating: 0, count: StripedCounter.stripes * StripedCounter.stride)
        slots.storeBytes(of: initial, as: Int.self)
    }

    deinit { slots.deallocate() }

    /// The calling thread's slot: `pthread_self` is the thread's control block, whose
    /// addresses differ by stack-sized steps, so its bits are mixed before the top ones are taken.
    @inline(__always)
    private var slot: UnsafeMutableRawPointer {
        let h = UInt64(UInt(bitPattern: Int(bitPattern: UInt(pthread_self())))) &* 0x9E37_79B9_7F4A_7C15
        return slots + Int(h >> 60) * StripedCounter.stride
    }

    @inline(__always)
    func add(_ n: Int, ordering: AtomicUpdateOrdering = .relaxed) {
        _ = slice_fetch_add_relaxed(slot, n)
    }

    /// Adds and returns this thread's slot's value before (`oldValue`): a per-thread ticket,
    /// enough for sampling every n-th operation.
    @inline(__always)
    func wrappingAdd(_ n: Int, ordering: AtomicUpdateOrdering = .relaxed) -> (oldValue: Int, newValue: Int) {
        let old = slice_fetch_add_relaxed(slot, n)
        return (old, old &+ n)
    }

    func load(ordering: AtomicLoadOrdering = .relaxed) -> Int {
        var sum = 0
        for i in 0..<StripedCounter.stripes {
            sum &+= slice_fetch_add_relaxed(slots + i * StripedCounter.stride, 0)
        }
        return sum
    }
}
