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

/// A value guarded by a pthread mutex (visible to ThreadSanitizer).
final class Locked<Value>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    @inline(__always)
    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}

#if canImport(Glibc)
    import Glibc
#endif
