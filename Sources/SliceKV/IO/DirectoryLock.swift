#if canImport(Glibc)
    import Glibc
#endif

/// An exclusive `flock` on the store's LOCK file, held for as long as this object lives.
final class DirectoryLock: Sendable {
    private let file: File

    /// `readOnly`: the file is not created (a read-only open writes nothing); an exclusive
    /// lock works on a read-only descriptor all the same.
    init(path: String, layer: any FileLayer, readOnly: Bool = false) throws {
        file = try layer.open(path, flags: readOnly ? O_RDONLY : O_RDWR | O_CREAT, mode: File.defaultMode)
        try layer.lock(file)
    }

    /// Lets another opener in (the descriptor itself closes with this object).
    func release() { file.layer.unlock(file) }

    deinit { release() }
}
