#if canImport(Glibc)
    import Glibc
#endif

/// A `flock` on the store's LOCK file, held for as long as this object lives: exclusive for a
/// store opened to write, shared for one opened read-only (readers of a snapshot, or of a
/// store nobody writes, may be many; a writer excludes them all and they exclude it).
final class DirectoryLock: Sendable {
    private let file: File

    /// `readOnly`: the file is not created (a read-only open writes nothing), and the lock is
    /// shared.
    init(path: String, layer: any FileLayer, readOnly: Bool = false) throws {
        file = try layer.open(path, flags: readOnly ? O_RDONLY : O_RDWR | O_CREAT, mode: File.defaultMode)
        try layer.lock(file, shared: readOnly)
    }

    /// Lets another opener in (the descriptor itself closes with this object).
    func release() { file.layer.unlock(file) }

    deinit { release() }
}
