import SliceKV

/// What resolving a name found, kept while the store has not been written since: the kernel
/// asks again for every name whose entry timed out or that it forgot (a `stat` storm, `find`,
/// `make` checking its targets), and a change request (unlink, rename, create) names what the
/// LOOKUP just before it resolved. With nothing written in between, the answer is the same.
///
/// Validity: every entry carries the store's `changeCount` read before its resolution began
/// (or, for a directory a change just touched, the count its own write produced); it answers
/// only while the count is unchanged. Any write through the mount (the only writer of its
/// store) bumps the count after it lands, so a resolution that raced a write is never kept as
/// current. The cache empties itself when the count moves on, so it holds one generation of
/// answers, at most `capacity` of them. Absent names are kept too.
final class LookupCache: Sendable {
    static let capacity = 1 << 16

    /// What `Namespace.node` reads of a resolved path.
    struct Name: Hashable {
        var key: [UInt8]
        var isSelfEntry: Bool
        var isRoot: Bool
        var isPieceDirectory: Bool

        init(_ r: PathMapping.Resolved) {
            key = r.key
            isSelfEntry = r.isSelfEntry
            isRoot = r.isRoot
            isPieceDirectory = r.isPieceDirectory
        }
    }

    private struct State {
        var generation: UInt64 = .max
        var nodes: [Name: Node?] = [:]
    }

    private let state = Locked(State())

    /// The node at `r` (`.some(nil)` for an absent name) if it was found at `generation`.
    func node(at r: PathMapping.Resolved, generation: UInt64) -> Node?? {
        state.withLock { s in s.generation == generation ? s.nodes[Name(r)] : nil }
    }

    /// Keeps what a resolution begun at `generation` found at `r`.
    func keep(_ node: Node?, at r: PathMapping.Resolved, generation: UInt64) {
        let name = Name(r)
        state.withLock { s in
            if s.generation != generation {
                // Older answers are stale; an answer older than the ones kept is not kept.
                guard s.generation == .max || generation > s.generation else { return }
                // Not keeping the capacity: between writes (a create loop) this runs on every
                // lookup, and clearing a table grown by a stat storm costs its whole size.
                s.nodes = [:]
                s.generation = generation
            }
            if s.nodes.count >= LookupCache.capacity { s.nodes = [:] }
            s.nodes[name] = node
        }
    }
}
