#if canImport(Glibc)
    import Glibc
#endif

/// One name resolved in the namespace: what it is, its inode number and where its content is.
struct Node: Sendable {
    /// Where a regular file's bytes are.
    enum Content: Equatable, Sendable {
        /// Not a regular file.
        case none
        /// The chunked value of this inode (`FSKeyspace.chunks`).
        case chunks
        /// The `.user` value of `key`, as the API put it (`size` bytes).
        case plain(size: UInt64)
    }

    var ino: InodeNumber
    var kind: InodeRecord.Kind
    /// The key the node was found at (the root: empty).
    var key: [UInt8]
    /// Its attributes; nil for a node without a record (defaults apply).
    var record: InodeRecord?
    var content: Content
    /// Has an `EntryRecord` (made through the mount, or made a record of since).
    var recorded: Bool
    /// A record of the first layout (path-keyed, `FSKeyspace.legacy*`), to be moved on change.
    var legacy = false
    /// The committed size of `.chunks` content when the lookup read it (it resolves the path's
    /// entry, which reads the header): saves `stat` a second read of the header.
    var committedSize: UInt64?

    var isDirectory: Bool { kind == .directory }
}
