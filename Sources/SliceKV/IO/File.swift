#if canImport(Glibc)
    import Glibc
#endif

/// An open file descriptor and the `FileLayer` it came from. Every call on it goes through
/// that layer; this type only loops over short transfers and names the file in errors.
///
/// Thread-safety: positional reads and writes on one descriptor are safe from many threads;
/// `append` is meant for a single writer (the WAL leader, a table builder).
package final class File: Sendable {
    package let fd: Int32
    package let path: String
    package let layer: any FileLayer

    /// Store files are private to the owner: a file that is mode 0600 inside the mount must
    /// not be readable from the tables by other local users.
    package static let defaultMode: mode_t = 0o600

    /// Wraps a descriptor a layer opened; the layer closes it when this object goes away.
    package init(fd: Int32, path: String, layer: any FileLayer) {
        self.fd = fd
        self.path = path
        self.layer = layer
    }

    deinit { layer.close(fd: fd, path: path) }

    /// An unnamed temporary file (`O_TMPFILE`) on the filesystem of `directory`: it vanishes
    /// with its descriptor, even if the process is killed.
    package static func temporary(in directory: String, layer: any FileLayer = PosixFileLayer.shared) throws -> File {
        try layer.openTemporary(in: directory)
    }

    /// Reads up to `buffer.count` bytes at `offset`; fewer only at end of file.
    package func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        var done = 0
        while done < buffer.count {
            let n = try layer.read(
                self, into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]), at: offset + Int64(done))
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// Reads exactly `count` bytes at `offset`, or fails with a corruption error naming the file.
    func read(count: Int, at offset: Int64) throws -> [UInt8] {
        let bytes = try [UInt8](unsafeUninitializedCapacity: count) { buf, initialized in
            initialized = try read(into: UnsafeMutableRawBufferPointer(buf), at: offset)
        }
        guard bytes.count == count else {
            throw SliceError.corruption(
                "file is shorter than expected (wanted \(count) bytes)", path: path, offset: offset)
        }
        return bytes
    }

    /// Appends at the current file position (files opened for writing start at 0).
    func append(_ buffer: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < buffer.count {
            done += try layer.write(self, UnsafeRawBufferPointer(rebasing: buffer[done...]), at: nil)
        }
    }

    func append(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try append($0) }
    }

    /// Writes all of `buffer` at `offset` (`pwrite`), finishing short writes.
    package func write(_ buffer: UnsafeRawBufferPointer, at offset: Int64) throws {
        var done = 0
        while done < buffer.count {
            done += try layer.write(self, UnsafeRawBufferPointer(rebasing: buffer[done...]), at: offset + Int64(done))
        }
    }

    /// Makes written data durable (`fdatasync`).
    func sync() throws { try layer.sync(self) }

    func size() throws -> Int64 { try layer.size(self) }

    package func truncate(to length: Int64) throws { try layer.truncate(self, to: length) }
}
