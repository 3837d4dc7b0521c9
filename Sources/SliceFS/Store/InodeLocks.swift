import SliceKV

/// Striped locks that serialise read-modify-writes of one inode's record.
///
/// The namespace changes records under `Namespace.metaLock` and, for the inode whose record it
/// changes besides a directory's, this stripe too; a file's content commit changes only the
/// file's record (size, times, blocks) and takes only the stripe, so writes to different files
/// never wait on each other or on namespace changes. Order: `metaLock`, then a stripe, then an
/// open file's state; never two stripes at once.
final class InodeLocks: Sendable {
    private let stripes: [Locked<UInt8>] = (0..<64).map { _ in Locked(0) }

    func withLock<R>(_ ino: InodeNumber, _ body: () throws -> R) rethrows -> R {
        try stripes[Int(truncatingIfNeeded: (ino ^ (ino >> 17)) & 63)].withLock { _ in try body() }
    }
}
