import SliceKV

/// The inodes the kernel knows: for each number it was handed, how many lookups it holds
/// (given back by `forget`) and the path to find the node again.
///
/// Requests carry numbers, the store is keyed by paths: an entry keeps the canonical path it
/// was last found under. A rename moves the paths of every entry at or below the old name, so
/// a number never leads to a stale path; a hard-linked file keeps one of its names (its record
/// is found by number whatever the name). The root is always present.
///
/// Nodes outlive the kernel's lookups: when the kernel forgets an inode (its dentry and inode
/// caches are bounded, and `drop_caches` empties them), a current cached node is kept in
/// `retained`, so the next LOOKUP of that name reads one entry record instead of resolving it
/// again. Every change that drops a cached node drops a retained one too.
///
/// Thread-safety: `entries`' lock, held for map operations only; `retained`'s lock is taken
/// only inside it (so a node moves from one to the other atomically).
final class InodeTable: Sendable {
    struct Entry {
        /// Canonical path bytes ("/a/b"); "/" for the root.
        var path: [UInt8]
        var resolved: PathMapping.Resolved
        var lookups: UInt64
        /// The node as last resolved, with a regular file's committed size, until a change to
        /// it (`invalidate`): getattr, getxattr and opens by number skip the store.
        var node: Node?
        var size: UInt64?
        /// Bumped by every invalidation, so a resolution that raced a change is not cached.
        var generation: UInt64 = 0
    }

    private let entries = Locked<[InodeNumber: Entry]>([:])
    /// Current nodes of inodes the kernel forgot, with their committed sizes. At most
    /// `retainedCapacity` (a few hundred bytes each: 32k nodes are about 10 MiB); emptied when full.
    private let retained = Locked<[InodeNumber: Node]>([:])
    static let retainedCapacity = 1 << 15

    static let rootPath: [UInt8] = [0x2f]

    init() {
        entries.withLock {
            $0[InodeNumbers.root] = Entry(
                path: InodeTable.rootPath,
                resolved: PathMapping.Resolved(key: [], isSelfEntry: false, isRoot: true), lookups: 1)
        }
    }

    /// Records that the kernel was told of `ino` at `path` (one more lookup).
    func remember(_ ino: InodeNumber, path: [UInt8], resolved: PathMapping.Resolved) {
        entries.withLock { table in
            if var e = table[ino] {
                e.lookups += 1
                if e.path != path { e.node = nil }
                e.path = path
                e.resolved = resolved
                table[ino] = e
            } else {
                var e = Entry(path: path, resolved: resolved, lookups: 1)
                if let n = retained.withLock({ $0.removeValue(forKey: ino) }), n.key == resolved.key {
                    e.node = n
                    e.size = n.committedSize
                }
                table[ino] = e
            }
        }
    }

    func entry(_ ino: InodeNumber) -> Entry? { entries.withLock { $0[ino] } }

    /// Gives back `count` lookups; true when the kernel no longer holds the number.
    @discardableResult
    func forget(_ ino: InodeNumber, _ count: UInt64) -> Bool {
        guard ino != InodeNumbers.root else { return false }
        return entries.withLock { table in
            guard var e = table[ino] else { return true }
            e.lookups = e.lookups > count ? e.lookups - count : 0
            if e.lookups == 0 {
                table[ino] = nil
                if var n = e.node {
                    n.committedSize = e.size ?? n.committedSize
                    retained.withLock { r in
                        if r.count >= InodeTable.retainedCapacity { r.removeAll() }
                        r[ino] = n
                    }
                }
                return true
            }
            table[ino] = e
            return false
        }
    }

    /// Whether the kernel still holds `ino`.
    func isKnown(_ ino: InodeNumber) -> Bool { entries.withLock { $0[ino] != nil } }

    /// Moves the paths of every entry at or below `from` to the same place below `to`.
    func renamed(from: [UInt8], to: [UInt8]) {
        entries.withLock { table in
            retained.withLock { $0.removeAll() }  // keys below `from` changed
            for (ino, e) in table
            where e.path == from || (e.path.count > from.count && e.path.starts(with: from + [0x2f])) {
                let path = to + e.path[from.count...]
                guard case .success(let r) = PathMapping.resolve(path) else { continue }
                table[ino] = Entry(path: path, resolved: r, lookups: e.lookups, generation: e.generation + 1)
            }
        }
    }
}

extension InodeTable {
    /// A non-directory moved: only its own entry changes (no scan of the table).
    func moved(_ ino: InodeNumber, to path: [UInt8], resolved: PathMapping.Resolved) {
        entries.withLock { table in
            retained.withLock { _ = $0.removeValue(forKey: ino) }
            guard var e = table[ino] else { return }
            e.path = path
            e.resolved = resolved
            e.node = nil
            e.size = nil
            e.generation += 1
            table[ino] = e
        }
    }
}

extension InodeTable {
    /// Two names swapped places (`RENAME_EXCHANGE`): entries at or below each move below the other.
    func exchanged(_ a: [UInt8], _ b: [UInt8]) {
        entries.withLock { table in
            retained.withLock { $0.removeAll() }
            func under(_ path: [UInt8], _ base: [UInt8]) -> Bool {
                path == base || (path.count > base.count && path.starts(with: base + [0x2f]))
            }
            for (ino, e) in table {
                let path: [UInt8]
                if under(e.path, a) {
                    path = b + e.path[a.count...]
                } else if under(e.path, b) {
                    path = a + e.path[b.count...]
                } else {
                    continue
                }
                guard case .success(let r) = PathMapping.resolve(path) else { continue }
                table[ino] = Entry(path: path, resolved: r, lookups: e.lookups, generation: e.generation + 1)
            }
        }
    }
}

extension InodeTable {
    /// The cached node of `ino` and the generation to hand back to `cache`.
    func cached(_ ino: InodeNumber) -> (node: Node?, size: UInt64?, generation: UInt64)? {
        entries.withLock { table in table[ino].map { ($0.node, $0.size, $0.generation) } }
    }

    /// The current node of `ino`, cached or retained, if either is known.
    func currentNode(_ ino: InodeNumber) -> Node? {
        entries.withLock { table in
            if let e = table[ino] { return e.node.map { n in withSize(n, e.size) } }
            return retained.withLock { $0[ino] }
        }
    }

    private func withSize(_ n: Node, _ size: UInt64?) -> Node {
        var n = n
        n.committedSize = size ?? n.committedSize
        return n
    }

    /// Keeps a resolution of `ino` made when the entry was at `generation` (dropped if a
    /// change came since).
    func cache(_ ino: InodeNumber, node: Node, size: UInt64? = nil, generation: UInt64) {
        entries.withLock { table in
            guard var e = table[ino], e.generation == generation else { return }
            e.node = node
            if let size { e.size = size }
            table[ino] = e
        }
    }

    /// A content change to the regular file `ino` landed (a commit or a truncate, written under
    /// the inode's stripe, which every change to its record takes): its cached node gets the
    /// record and committed size that change wrote instead of being dropped, so the next LOOKUP
    /// or GETATTR of a file just written reads nothing. Resolutions begun before it are not
    /// cached (the generation moves on). `size` nil: unknown, read again when asked.
    func contentChanged(_ ino: InodeNumber, record: InodeRecord, size: UInt64?) {
        entries.withLock { table in
            retained.withLock { r in
                guard var n = r[ino] else { return }
                n.record = record
                n.committedSize = size
                r[ino] = size == nil ? nil : n
            }
            guard var e = table[ino] else { return }
            e.generation += 1
            if var n = e.node, n.content == .chunks {
                n.record = record
                n.committedSize = size
                e.node = n
                e.size = size
            } else {
                e.node = nil
                e.size = nil
            }
            table[ino] = e
        }
    }

    /// Forgets what is cached of these inodes (after a change to them).
    func invalidate(_ inos: InodeNumber...) {
        entries.withLock { table in
            retained.withLock { r in for ino in inos { r[ino] = nil } }
            for ino in inos {
                guard var e = table[ino] else { continue }
                e.node = nil
                e.size = nil
                e.generation += 1
                table[ino] = e
            }
        }
    }

    /// Forgets every cached node (a directory moved: the keys below it changed).
    func invalidateAll() {
        entries.withLock { table in
            retained.withLock { $0.removeAll() }
            for (ino, var e) in table {
                e.node = nil
                e.size = nil
                e.generation += 1
                table[ino] = e
            }
        }
    }

    /// The numbers the kernel holds for these canonical paths (a walk over the table: for
    /// changes another mount made, not for requests).
    func inodes(atPaths paths: Set<[UInt8]>) -> [[UInt8]: InodeNumber] {
        entries.withLock { table in
            var found: [[UInt8]: InodeNumber] = [:]
            for (ino, e) in table where paths.contains(e.path) { found[e.path] = ino }
            return found
        }
    }
}
