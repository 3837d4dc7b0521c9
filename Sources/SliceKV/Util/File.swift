#if canImport(Glibc)
    import Glibc
#endif

/// An open file descriptor. All I/O goes through `pread`/`pwrite`/`write` here, so this is
/// the one place that retries `EINTR`, finishes short transfers and maps `errno` to `SliceError`.
///
/// Thread-safety: positional reads and writes on one descriptor are safe from many threads;
/// `append` is meant for a single writer (the WAL leader, a table builder).
package final class File: Sendable {
    let fd: Int32
    let path: String

    private init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit { close(fd) }

    static func open(_ path: String, flags: Int32, mode: mode_t = 0o644) throws -> File {
        let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
        guard fd >= 0 else { throw SliceError.io("cannot open", path: path) }
        return File(fd: fd, path: path)
    }

    static func openForReading(_ path: String) throws -> File { try open(path, flags: O_RDONLY) }

    /// Creates (or truncates) a file for writing.
    package static func create(_ path: String) throws -> File { try open(path, flags: O_WRONLY | O_CREAT | O_TRUNC) }

    /// An unnamed temporary file (`O_TMPFILE`) on the filesystem of `directory`: it vanishes
    /// with its descriptor, even if the process is killed. Falls back to a named file that is
    /// unlinked at once where `O_TMPFILE` is not supported.
    package static func temporary(in directory: String) throws -> File {
        // O_TMPFILE is a macro Swift does not import: __O_TMPFILE | O_DIRECTORY.
        let oTmpfile: Int32 = 0o20_000_000 | O_DIRECTORY
        var fd = Glibc.open(directory, oTmpfile | O_RDWR | O_CLOEXEC, 0o600)
        if fd < 0 {
            var template = Array("\(directory)/spill-XXXXXX".utf8CString)
            fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
            if fd >= 0 { template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) } }
        }
        guard fd >= 0 else { throw SliceError.io("cannot create a temporary file", path: directory) }
        return File(fd: fd, path: "\(directory)/(temporary)")
    }

    /// Reads up to `buffer.count` bytes at `offset`; fewer only at end of file.
    package func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw SliceError.io("read failed", path: path)
            }
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
            let n = Glibc.write(fd, buffer.baseAddress! + done, buffer.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw SliceError.io("write failed", path: path)
            }
            done += n
        }
    }

    /// Writes all of `buffer` at `offset` (`pwrite`), finishing short writes.
    package func write(_ buffer: UnsafeRawBufferPointer, at offset: Int64) throws {
        var done = 0
        while done < buffer.count {
            let n = pwrite(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw SliceError.io("write failed", path: path)
            }
            done += n
        }
    }

    func append(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try append($0) }
    }

    /// Makes written data durable (`fdatasync`).
    func sync() throws {
        while fdatasync(fd) != 0 {
            if errno == EINTR { continue }
            throw SliceError.io("fdatasync failed", path: path)
        }
    }

    func size() throws -> Int64 {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SliceError.io("fstat failed", path: path) }
        return Int64(st.st_size)
    }

    package func truncate(to length: Int64) throws {
        guard ftruncate(fd, off_t(length)) == 0 else { throw SliceError.io("ftruncate failed", path: path) }
    }
}

/// Directory and path operations, each mapping failures to `SliceError`.
enum FileSystem {
    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    static func createDirectory(_ path: String) throws {
        var prefix = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            prefix += "/" + component
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                throw SliceError.io("cannot create directory", path: prefix)
            }
        }
    }

    static func contents(of directory: String) throws -> [String] {
        guard let dir = opendir(directory) else { throw SliceError.io("cannot list directory", path: directory) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    static func remove(_ path: String) throws {
        if unlink(path) != 0 && errno != ENOENT { throw SliceError.io("cannot delete", path: path) }
    }

    static func rename(_ from: String, to: String) throws {
        guard Glibc.rename(from, to) == 0 else { throw SliceError.io("cannot rename to \(to)", path: from) }
    }

    /// Makes a rename or create inside `directory` durable.
    static func syncDirectory(_ directory: String) throws {
        let fd = Glibc.open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw SliceError.io("cannot open directory", path: directory) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw SliceError.io("fsync of directory failed", path: directory) }
    }

    static func fileSize(_ path: String) -> Int64? {
        var st = stat()
        return stat(path, &st) == 0 ? Int64(st.st_size) : nil
    }
}

/// An exclusive `flock` on the store's LOCK file, held for as long as this object lives.
final class DirectoryLock: Sendable {
    private let file: File

    init(path: String) throws {
        file = try File.open(path, flags: O_RDWR | O_CREAT)
        if flock(file.fd, LOCK_EX | LOCK_NB) != 0 {
            if errno == EWOULDBLOCK {
                throw SliceError(
                    .locked, "the store is in use by another process (or another open handle in this one)",
                    path: path)
            }
            throw SliceError.io("cannot lock", path: path)
        }
    }

    /// Lets another opener in (the descriptor itself closes with this object).
    func release() { flock(file.fd, LOCK_UN) }

    deinit { release() }
}
