import SliceKV

/// The staged content of a file that is open through the mount.
///
/// All handles of one path share one `OpenFile`, so a write is visible to every reader of the
/// mount at once. Content is loaded from the engine on first access and written back (one
/// atomic batch: value and attributes) on flush, fsync and the last close, when dirty.
/// Locking: `state` guards everything; `SliceFileSystem.metaLock` is taken before it when both are
/// needed.
final class OpenFile: Sendable {
    struct State {
        var key: [UInt8]
        var data: [UInt8]?
        var dirty = false
        var unlinked = false
        /// Handles open on this file (the table entry goes away at zero).
        var opens = 0
        var mtime: Timestamp?
    }

    let state: Locked<State>

    init(key: [UInt8]) { state = Locked(State(key: key)) }
}

/// What a FUSE file handle (`fi->fh`) refers to.
enum Handle {
    case file(OpenFile)
    case control(ControlFile)
}

#if canImport(Glibc)
    import Glibc
#endif
