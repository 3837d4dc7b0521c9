import CSliceKV

#if canImport(Glibc)
    import Glibc
#endif

/// The production `FileLayer`: each method is one system call (retried on `EINTR`), its errno
/// mapped to `SliceError` in one place.
package final class PosixFileLayer: FileLayer {
    /// Stateless, so one instance serves every store.
    package static let shared = PosixFileLayer()

    package init() {}

    package func open(_ path: String, flags: Int32, mode: mode_t) throws -> File {
        File(fd: try openDescriptor(path, flags: flags, mode: mode), path: path, layer: self)
    }

    package func openTemporary(in directory: String) throws -> File {
        File(fd: try temporaryDescriptor(in: directory), path: "\(directory)/(temporary)", layer: self)
    }

    /// The descriptors behind `open` and `openTemporary`, for layers that wrap this one and
    /// hand out `File`s of their own.
    package func openDescriptor(_ path: String, flags: Int32, mode: mode_t) throws -> Int32 {
        var fd: Int32
        repeat { fd = Glibc.open(path, flags | O_CLOEXEC, mode) } while fd < 0 && errno == EINTR
        guard fd >= 0 else { throw SliceError.io("cannot open", path: path) }
        return fd
    }

    package func temporaryDescriptor(in directory: String) throws -> Int32 {
        // O_TMPFILE is a macro Swift does not import: __O_TMPFILE | O_DIRECTORY.
        let oTmpfile: Int32 = 0o20_000_000 | O_DIRECTORY
        var fd = Glibc.open(directory, oTmpfile | O_RDWR | O_CLOEXEC, 0o600)
        if fd < 0 {
            // Not supported by this filesystem: a named file, unlinked at once.
            var template = Array("\(directory)/spill-XXXXXX".utf8CString)
            fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
            if fd >= 0 { template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) } }
        }
        guard fd >= 0 else { throw SliceError.io("cannot create a temporary file", path: directory) }
        return fd
    }

    package func close(fd: Int32, path: String) { _ = Glibc.close(fd) }

    package func read(_ file: File, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        while true {
            let n = pread(file.fd, buffer.baseAddress, buffer.count, off_t(offset))
            if n >= 0 { return n }
            if errno != EINTR { throw SliceError.io("read failed", path: file.path) }
        }
    }

    package func write(_ file: File, _ buffer: UnsafeRawBufferPointer, at offset: Int64?) throws -> Int {
        while true {
            let n =
                if let offset { pwrite(file.fd, buffer.baseAddress, buffer.count, off_t(offset)) } else {
                    Glibc.write(file.fd, buffer.baseAddress, buffer.count)
                }
            if n >= 0 { return n }
            if errno != EINTR { throw SliceError.io("write failed", path: file.path) }
        }
    }

    package func sync(_ file: File) throws {
        while fdatasync(file.fd) != 0 {
            if errno != EINTR { throw SliceError.io("fdatasync failed", path: file.path) }
        }
    }

    package func truncate(_ file: File, to length: Int64) throws {
        guard ftruncate(file.fd, off_t(length)) == 0 else { throw SliceError.io("ftruncate failed", path: file.path) }
    }

    package func allocate(_ file: File, offset: Int64, length: Int64) throws {
        let r = posix_fallocate(file.fd, off_t(offset), off_t(length))
        guard r == 0 else { throw SliceError.io("cannot allocate space", path: file.path, errno: r) }
    }

    package func size(_ file: File) throws -> Int64 {
        var st = stat()
        guard fstat(file.fd, &st) == 0 else { throw SliceError.io("fstat failed", path: file.path) }
        return Int64(st.st_size)
    }

    package func seek(_ file: File, to offset: Int64) throws {
        guard lseek(file.fd, off_t(offset), SEEK_SET) >= 0 else { throw SliceError.io("lseek failed", path: file.path) }
    }

    package func map(_ file: File, offset: Int64, length: Int, writable: Bool) throws -> UnsafeMutableRawPointer {
        let protection = writable ? PROT_READ | PROT_WRITE : PROT_READ
        guard let p = mmap(nil, length, protection, MAP_SHARED, file.fd, off_t(offset)), p != MAP_FAILED else {
            throw SliceError.io("mmap failed", path: file.path)
        }
        return p
    }

    package func didWriteMapped(_ file: File, offset: Int64, count: Int) {}

    package func startWriteback(_ file: File, offset: Int64, count: Int64) {
        _ = slice_start_writeback(file.fd, offset, count)
    }

    package func lock(_ file: File, shared: Bool) throws {
        guard flock(file.fd, (shared ? LOCK_SH : LOCK_EX) | LOCK_NB) == 0 else {
            if errno == EWOULDBLOCK {
                throw SliceError(
                    .locked, "the store is in use by another process (or another open handle in this one)",
                    path: file.path)
            }
            throw SliceError.io("cannot lock", path: file.path)
        }
    }

    package func unlock(_ file: File) { _ = flock(file.fd, LOCK_UN) }

    package func removeDirectory(_ path: String) throws {
        guard rmdir(path) == 0 else { throw SliceError.io("cannot remove directory", path: path) }
    }

    package func createDirectory(_ path: String, mode: mode_t) throws {
        let components = path.split(separator: "/")
        var prefix = path.hasPrefix("/") ? "" : "."
        for (i, component) in components.enumerated() {
            prefix += "/" + component
            let m: mode_t = i == components.count - 1 ? mode : 0o755
            if mkdir(prefix, m) != 0 && errno != EEXIST {
                throw SliceError.io("cannot create directory", path: prefix)
            }
        }
    }

    package func contents(of directory: String) throws -> [String] {
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

    package func remove(_ path: String) throws {
        if unlink(path) != 0 && errno != ENOENT { throw SliceError.io("cannot delete", path: path) }
    }

    package func rename(_ from: String, to: String) throws {
        guard Glibc.rename(from, to) == 0 else { throw SliceError.io("cannot rename to \(to)", path: from) }
    }

    package func link(_ from: String, to: String) throws {
        if Glibc.link(from, to) == 0 { return }
        // Another filesystem, or one without hard links: a copy.
        guard errno == EXDEV || errno == EPERM || errno == EMLINK || errno == ENOTSUP else {
            throw SliceError.io("cannot link to \(to)", path: from)
        }
        try copy(from, to: to, length: nil)
    }

    package func syncDirectory(_ path: String) throws {
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw SliceError.io("cannot open directory", path: path) }
        defer { Glibc.close(fd) }
        guard fsync(fd) == 0 else { throw SliceError.io("fsync of directory failed", path: path) }
    }

    package func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    package func fileSize(_ path: String) -> Int64? {
        var st = stat()
        return stat(path, &st) == 0 ? Int64(st.st_size) : nil
    }
}
