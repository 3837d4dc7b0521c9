import SliceKV

/// Inode numbers of the nodes inside snapshot views, as the kernel sees them.
///
/// Each view (`SnapshotDirectory.View`) is a `SliceFileSystem` over a snapshot's store, with
/// the store's own numbers, which repeat the live tree's. The kernel is given numbers from
/// `base` up instead, one per (view, inner number), kept while the kernel holds lookups on
/// them (`forget` gives them back) and handed out again for the same node meanwhile.
/// Numbers given without a lookup (`d_ino` of a plain `readdir`, `.` entries) stay until
/// their view is dropped: at most one per node listed.
final class SnapshotInodes: Sendable {
    /// Above the control files, below the derived numbers (`InodeNumbers.derivedBit`).
    static let base: InodeNumber = InodeNumbers.controlBase + (1 << 32)

    static func contains(_ ino: InodeNumber) -> Bool { ino >= base && ino < InodeNumbers.derivedBit }

    struct Inner: Hashable {
        let view: UInt64
        let ino: InodeNumber
    }

    private struct Entry {
        let inner: Inner
        var lookups: UInt64
    }

    private struct State {
        var byOuter: [InodeNumber: Entry] = [:]
        var byInner: [Inner: InodeNumber] = [:]
        var next = SnapshotInodes.base
    }

    private let state = Locked(State())

    /// The kernel's number for `inner`, made if needed; `counting` adds one lookup.
    func outer(_ inner: Inner, counting: Bool) -> InodeNumber {
        state.withLock { s in
            let ino: InodeNumber
            if let known = s.byInner[inner] {
                ino = known
            } else {
                ino = s.next
                s.next += 1
                s.byInner[inner] = ino
                s.byOuter[ino] = Entry(inner: inner, lookups: 0)
            }
            if counting { s.byOuter[ino]!.lookups += 1 }
            return ino
        }
    }

    func inner(_ outer: InodeNumber) -> Inner? { state.withLock { $0.byOuter[outer]?.inner } }

    /// Gives back `count` lookups; the number is forgotten at zero. Returns the node.
    func forget(_ outer: InodeNumber, _ count: UInt64) -> Inner? {
        state.withLock { s in
            guard var e = s.byOuter[outer] else { return nil }
            e.lookups -= min(e.lookups, count)
            if e.lookups == 0 {
                s.byOuter[outer] = nil
                s.byInner[e.inner] = nil
            } else {
                s.byOuter[outer] = e
            }
            return e.inner
        }
    }

    /// Forgets every number of a view (its snapshot was deleted or the mount ends).
    func drop(view: UInt64) {
        state.withLock { s in
            for (inner, outer) in s.byInner where inner.view == view {
                s.byInner[inner] = nil
                s.byOuter[outer] = nil
            }
        }
    }
}
