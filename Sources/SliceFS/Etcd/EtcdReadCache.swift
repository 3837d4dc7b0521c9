import Foundation
import SliceKV

/// Point reads this mount made or wrote a moment ago, so that resolving a name, which reads the
/// same entry, record and header keys again and again, does not ask the cluster each time (a
/// linearizable read costs about 2 ms through the gateway here: BENCHMARKS.md).
///
/// An entry answers only while
/// - no watch event for its key arrived after it (another mount's change drops it), and
/// - it is younger than `lifetime`, the kernel's own attribute timeout, which bounds how stale
///   an answer can be when the watch is down (reconnecting after a member died);
/// and each entry carries the revision it was read or written at, so a slow read never
/// replaces what a newer write of this mount left, nor undoes an invalidation that came after
/// it. File chunks are not kept (64 KiB each; the kernel's page cache holds file data).
final class EtcdReadCache: Sendable {
    struct Entry {
        var value: [UInt8]?
        var revision: Int64
        /// false: invalidated at `revision` (kept to refuse reads from before it).
        var known: Bool
        var time: UInt64
    }

    static let capacity = 1 << 16
    static let lifetime: UInt64 = 1_000_000_000

    private let entries = Locked<[[UInt8]: Entry]>([:])

    private static var now: UInt64 { DispatchTime.now().uptimeNanoseconds }

    /// The value kept for `key` (`.some(nil)`: known absent), with its revision; nil: ask.
    func lookup(_ key: [UInt8]) -> (value: [UInt8]?, revision: Int64)? {
        let now = EtcdReadCache.now
        return entries.withLock { table in
            guard let e = table[key], e.known, now &- e.time < EtcdReadCache.lifetime else { return nil }
            return (e.value, e.revision)
        }
    }

    /// Keeps what a read at `revision` found (unless something newer is known of the key).
    func read(_ key: [UInt8], _ value: [UInt8]?, revision: Int64) {
        put(key, Entry(value: value, revision: revision, known: true, time: EtcdReadCache.now), replacingEqual: false)
    }

    /// Keeps what this mount's transaction at `revision` wrote.
    func wrote(_ key: [UInt8], _ value: [UInt8]?, revision: Int64) {
        put(key, Entry(value: value, revision: revision, known: true, time: EtcdReadCache.now), replacingEqual: true)
    }

    /// Another mount changed `key` at `revision`.
    func changed(_ key: [UInt8], revision: Int64) {
        put(key, Entry(value: nil, revision: revision, known: false, time: EtcdReadCache.now), replacingEqual: true)
    }

    func clear() { entries.withLock { $0.removeAll() } }

    private func put(_ key: [UInt8], _ entry: Entry, replacingEqual: Bool) {
        entries.withLock { table in
            if let old = table[key],
                old.revision > entry.revision || (old.revision == entry.revision && !replacingEqual)
            {
                return
            }
            if table.count >= EtcdReadCache.capacity { table.removeAll(keepingCapacity: true) }
            table[key] = entry
        }
    }

    /// Whether reads of `key` (in `keyspace`) are kept: everything but file chunks.
    static func keeps(_ keyspace: Keyspace, _ key: some Collection<UInt8>) -> Bool {
        keyspace != FSKeyspace.chunks || key.count == 8  // a chunk header is the bare inode number
    }
}
