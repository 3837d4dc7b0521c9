import Glibc

/// A read-only shared mapping of a whole file, unmapped when the last reference goes.
///
/// Why: a table block read through `pread` costs a system call, a copy and an allocation
/// (measured at a quarter of a random get); from a mapping it is a view of the page cache.
/// Only immutable files are mapped (tables are never modified or truncated once written), so a
/// view never changes under a reader. A disk error while touching a mapped page raises SIGBUS
/// rather than returning EIO: `Options.mmapReads` turns mapping off where that matters.
final class FileMapping: @unchecked Sendable {
    let bytes: UnsafeRawBufferPointer

    /// Maps `size` bytes of `file` from offset 0; nil if the kernel refuses (the caller falls
    /// back to `pread`).
    init?(_ file: File, size: Int) {
        guard size > 0 else { return nil }
        guard let p = try? file.layer.map(file, offset: 0, length: size, writable: false) else { return nil }
        bytes = UnsafeRawBufferPointer(start: p, count: size)
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: bytes.baseAddress), bytes.count) }
}
