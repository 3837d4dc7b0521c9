#if canImport(Glibc)
    import Glibc
#endif

/// The one seam between SliceKV and the operating system's files: LevelDB's `Env`, Pebble's
/// `vfs.FS`.
///
/// Every file operation of the engine — WAL appends (written or mapped), tables, MANIFEST and
/// CURRENT, the LOCK file, blob files, spill files, directory listings, renames, deletes and
/// directory fsyncs — goes through a `FileLayer`, chosen per store with `Options.fileLayer`:
///
/// ```
///   Engine ─ LogWriter ─ AppendMapping ─┐
///   TableBuilder · TableReader ─────────┤
///   VersionSet (MANIFEST, CURRENT) ─────┼──►  File (a descriptor + its layer) ──► FileLayer
///   BlobFileWriter · BlobReaderCache ───┤                                          │
///   FileDeleter · recovery listings ────┘            PosixFileLayer (production) ◄─┤
///                                     FaultInjectingFileLayer (tests: faults,   ◄──┘
///                                     delays, torn writes, power cuts)
/// ```
///
/// Contract for implementations:
/// - Methods that move data (`read`, `write`) do one system call's worth of work and may be
///   short; `File` loops until done. `EINTR` is retried inside the layer.
/// - Failures are thrown as `SliceError` (`SliceError.io` maps `ENOSPC`/`EDQUOT` to `.noSpace`).
/// - Bytes copied into a writable mapping from `map` reach the file without a call; whoever
///   copies them reports the range with `didWriteMapped`, so that a layer modelling the disk
///   (power cuts) knows about them.
/// - Thread-safety: any method may be called from any thread at any time.
package protocol FileLayer: AnyObject, Sendable {
    // MARK: Files

    /// Opens (or creates, with `O_CREAT`) a file. `mode` applies to a new file.
    func open(_ path: String, flags: Int32, mode: mode_t) throws -> File
    /// An unnamed temporary file on the filesystem of `directory` that vanishes with its
    /// descriptor (spill files).
    func openTemporary(in directory: String) throws -> File
    /// Closes a descriptor (from `File.deinit`). Never fails.
    func close(fd: Int32, path: String)
    /// One `pread`: up to `buffer.count` bytes at `offset`; 0 at end of file.
    func read(_ file: File, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int
    /// One `pwrite` at `offset`, or one `write` at the file position when `offset` is nil.
    func write(_ file: File, _ buffer: UnsafeRawBufferPointer, at offset: Int64?) throws -> Int
    /// `fdatasync`: written and mapped bytes reach the disk.
    func sync(_ file: File) throws
    func truncate(_ file: File, to length: Int64) throws
    /// `posix_fallocate`: reserves disk space so later writes into it cannot fail for space.
    func allocate(_ file: File, offset: Int64, length: Int64) throws
    func size(_ file: File) throws -> Int64
    /// Sets the file position (`lseek` SEEK_SET), for appends after a rollback.
    func seek(_ file: File, to offset: Int64) throws
    /// A shared mapping of `length` bytes at `offset`; writable for mapped appends.
    func map(_ file: File, offset: Int64, length: Int, writable: Bool) throws -> UnsafeMutableRawPointer
    /// Reports bytes copied into a writable mapping of `file` (see the contract above).
    func didWriteMapped(_ file: File, offset: Int64, count: Int)
    /// Starts writeback of a range without waiting (`sync_file_range`); best effort.
    func startWriteback(_ file: File, offset: Int64, count: Int64)
    /// Takes an exclusive (or `shared`) `flock` without waiting; throws `.locked` when another
    /// holder's lock conflicts.
    func lock(_ file: File, shared: Bool) throws
    func unlock(_ file: File)

    // MARK: Names and directories

    /// Creates `path` and any missing parents. The last component gets `mode`.
    func createDirectory(_ path: String, mode: mode_t) throws
    /// Removes an empty directory (`rmdir`).
    func removeDirectory(_ path: String) throws
    /// Entry names of a directory, without "." and "..".
    func contents(of directory: String) throws -> [String]
    /// Unlinks a file; a missing file is not an error.
    func remove(_ path: String) throws
    func rename(_ from: String, to: String) throws
    /// Gives the immutable file `from` a second name `to` (a hard link), or makes `to` a copy of
    /// it where links are not possible (another filesystem). `to` must not exist.
    func link(_ from: String, to: String) throws
    /// `fsync` of a directory: the creates, renames and deletes in it so far are durable.
    func syncDirectory(_ path: String) throws
    func exists(_ path: String) -> Bool
    func fileSize(_ path: String) -> Int64?
}

extension FileLayer {
    /// Opens an existing file read-only.
    package func openForReading(_ path: String) throws -> File { try open(path, flags: O_RDONLY, mode: 0) }

    /// Creates (or truncates) a file for writing, private to the store's owner.
    package func create(_ path: String) throws -> File {
        try open(path, flags: O_WRONLY | O_CREAT | O_TRUNC, mode: File.defaultMode)
    }

    /// `link` by copying (the default, and the fallback where links fail): the first `length`
    /// bytes of `from` (all of it when nil) into a new file `to`, synced.
    package func link(_ from: String, to: String) throws { try copy(from, to: to, length: nil) }

    package func copy(_ from: String, to: String, length: Int64?) throws {
        let source = try openForReading(from)
        let target = try open(to, flags: O_WRONLY | O_CREAT | O_EXCL, mode: File.defaultMode)
        let total = try length ?? size(source)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 8)
        defer { buffer.deallocate() }
        var offset: Int64 = 0
        while offset < total {
            let want = Int(min(Int64(buffer.count), total - offset))
            let got = try read(source, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<want]), at: offset)
            guard got > 0 else {
                throw SliceError.corruption("file ended while being copied", path: from, offset: offset)
            }
            var done = 0
            while done < got {
                done += try write(
                    target, UnsafeRawBufferPointer(rebasing: buffer[done..<got]), at: offset + Int64(done))
            }
            offset += Int64(got)
        }
        try sync(target)
    }
}

/// The kinds of call a `FileLayer` makes, for counting and for aiming injected faults.
package enum FileOperation: String, CaseIterable, Sendable, CustomStringConvertible {
    case open, read, write, sync, truncate, allocate, seek, map, lock
    case createDirectory, list, remove, rename, syncDirectory, stat

    package var description: String { rawValue }

    /// Kinds that change what is on the disk (the ones a write-path fault test enumerates).
    package static let mutating: [FileOperation] = [
        .open, .write, .sync, .truncate, .allocate, .map, .remove, .rename, .syncDirectory,
    ]
}
