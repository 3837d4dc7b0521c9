import SliceKV
import Synchronization

/// Recent answers of `SliceFileSystem.node(_:)`, so that the lookup the kernel makes before an
/// operation and the operation itself (LOOKUP then CREATE, RENAME or UNLINK of the same names)
/// ask the store once: a node costs four or five engine lookups.
///
/// Validity is one generation number for the whole mount. Every change made through the mount
/// (a write to the store, or to an open file's staged content) bumps it, and an entry is used
/// only while the generation it was computed under is still current. A change anywhere thus
/// forgets everything: there is no per-key bookkeeping to get wrong (a create changes its
/// parent's and every ancestor's listing, a directory rename a whole subtree), and the pattern
/// this serves, a lookup followed at once by the operation, has no change in between. The
/// mount is its store's only writer (the LOCK file), so no change goes unseen.
///
/// Ordering: a reader takes the generation before it reads the store and files its answer
/// under it; a writer bumps the generation after its change is visible. An answer computed
/// across a change is therefore filed under a generation that is already over.
///
/// Entries live in a small direct-mapped table (a slot per hash, overwritten by the next key
/// that lands there) behind one lock held only to copy an entry in or out.
final class NodeCache: Sendable {
    private struct Entry {
        var key: [UInt8]
        var flags: UInt8
        var generation: UInt64
        var node: SliceFileSystem.Node?
    }

    private static let slotCount = 64
    private let current = Atomic<UInt64>(1)
    private let slots = Locked<[Entry?]>(Array(repeating: nil, count: NodeCache.slotCount))

    /// The generation to file an answer under: take it before reading the store.
    var generation: UInt64 { current.load(ordering: .acquiring) }

    /// Forgets every entry. Call after a change is visible to readers.
    func invalidate() { current.add(1, ordering: .releasing) }

    private static func flags(_ r: PathMapping.Resolved) -> UInt8 {
        (r.isRoot ? 1 : 0) | (r.isSelfEntry ? 2 : 0) | (r.isPieceDirectory ? 4 : 0)
    }

    private static func slot(_ r: PathMapping.Resolved) -> Int {
        var h = Hasher()
        r.key.withUnsafeBytes { h.combine(bytes: $0) }
        h.combine(flags(r))
        return Int(UInt(bitPattern: h.finalize()) % UInt(slotCount))
    }

    /// The cached answer for `r`: `.some(nil)` when it is known not to exist, nil when unknown.
    func lookup(_ r: PathMapping.Resolved) -> SliceFileSystem.Node?? {
        let now = generation
        let flags = NodeCache.flags(r)
        let i = NodeCache.slot(r)
        return slots.withLock { table -> SliceFileSystem.Node?? in
            guard let e = table[i], e.generation == now, e.flags == flags, e.key == r.key else {
                return nil
            }
            return .some(e.node)
        }
    }

    /// Files `node` as the answer for `r`, computed from a store read after `generation` was taken.
    func store(_ r: PathMapping.Resolved, _ node: SliceFileSystem.Node?, generation: UInt64) {
        let entry = Entry(key: r.key, flags: NodeCache.flags(r), generation: generation, node: node)
        let i = NodeCache.slot(r)
        slots.withLock { $0[i] = entry }
    }
}
