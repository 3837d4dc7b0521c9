import CFuse
import SliceKV

/// Tells the kernel that something it caches changed behind a reply: libfuse's notification
/// calls on the live session. Set by `FuseSession` once mounted; no-ops before and after.
public final class KernelNotifier: Sendable {
    /// The session pointer as a bit pattern (0: none), so the type stays `Sendable`.
    private let session = Locked<UInt>(0)

    public init() {}

    func attach(_ s: OpaquePointer?) { session.withLock { $0 = s.map { UInt(bitPattern: $0) } ?? 0 } }

    /// Drops the kernel's cached attributes of `ino` (not its pages). Safe from a request
    /// handler: an attribute-only invalidation takes no lock a request holds.
    public func invalidateAttributes(_ ino: InodeNumber) {
        session.withLock { bits in
            guard bits != 0, let s = OpaquePointer(bitPattern: bits) else { return }
            _ = fuse_lowlevel_notify_inval_inode(s, fuse_ino_t(ino), -1, 0)
        }
    }

    /// Drops the kernel's cached attributes and pages of `ino` (another mount changed it).
    /// Not from a request handler of the same inode: a page invalidation waits for page locks.
    public func invalidateInode(_ ino: InodeNumber) {
        session.withLock { bits in
            guard bits != 0, let s = OpaquePointer(bitPattern: bits) else { return }
            _ = fuse_lowlevel_notify_inval_inode(s, fuse_ino_t(ino), 0, 0)
        }
    }

    /// Drops the kernel's cached entry `name` in directory `parent` (found or absent).
    public func invalidateEntry(_ parent: InodeNumber, _ name: [UInt8]) {
        session.withLock { bits in
            guard bits != 0, let s = OpaquePointer(bitPattern: bits) else { return }
            _ = name.withUnsafeBufferPointer { n in
                n.withMemoryRebound(to: CChar.self) {
                    fuse_lowlevel_notify_inval_entry(s, fuse_ino_t(parent), $0.baseAddress, $0.count)
                }
            }
        }
    }
}
