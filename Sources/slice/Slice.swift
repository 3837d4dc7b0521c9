import ArgumentParser
import SliceFS
import SliceKV

#if canImport(Glibc)
    import Glibc
#endif

@main
struct Slice: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slice",
        abstract: "Slice: an LSM-tree key-value store.",
        discussion: """
            Exit status: 0 on success, 1 when `get` finds no such key, 2 on any error \
            (a message on standard error says what went wrong).
            """,
        subcommands: [
            Put.self, Get.self, Delete.self, Scan.self, Import.self, Stats.self, Flush.self, Compact.self,
            Checkpoint.self, SnapshotCommand.self,
            Check.self, Demo.self, Bench.self, Mount.self, Umount.self, CrashWriter.self, HistoryClient.self,
            CrashFileWriter.self, CrashVerify.self, NullMount.self,
        ]
    )
}

/// Options shared by every command that opens a store.
struct StoreOptions: ParsableArguments {
    @Argument(help: "The store's data directory (put, import and demo create a store there if it has none).")
    var directory: String

    @Option(help: "WAL sync policy: none (survives a process crash) or always (fdatasync before acknowledging).")
    var sync: Options.SyncPolicy = .none

    @Option(name: .customLong("cache-mb"), help: "Block cache size in MiB.")
    var cacheMB: Int = 64

    @Option(name: .customLong("memtable-mb"), help: "Memtable size in MiB.")
    var memtableMB: Int = 64

    @Option(name: .customLong("bloom-bits"), help: "Bloom filter bits per key (0 disables).")
    var bloomBits: Int = 10

    @Option(
        name: .customLong("wal-recovery"),
        help: """
            What opening does with a damaged WAL: tolerateTornTail (default: damage is an error), \
            absoluteConsistency, pointInTime or skipDamagedRecords (drop what is damaged, loudly).
            """)
    var walRecovery: WALRecovery = .tolerateTornTail

    @Option(
        help: """
            Compression of the tables written: none, lz4 or zstd on every level; default: none on \
            L0-L1, LZ4 below, zstd at the deepest level. Tables keep what they were written with.
            """)
    var compression: Compression?

    @Option(
        name: .customLong("compaction-style"),
        help: """
            leveled (default) or universal (size-tiered: less rewriting, more space); may change \
            at any open of a store.
            """)
    var compactionStyle: CompactionStyle = .leveled

    @Option(help: "Read from this named snapshot of the store (slice snapshot create) instead of the store.")
    var snapshot: String?

    var options: Options {
        var o = Options()
        o.syncPolicy = sync
        o.blockCacheBytes = cacheMB << 20
        o.memtableSize = memtableMB << 20
        o.bloomBitsPerKey = bloomBits
        o.walRecovery = walRecovery
        if let compression { o.setCompression(compression) }
        o.compaction.style = compactionStyle
        return o
    }

    /// Opens the existing store, runs `body` on it and closes it, reporting errors as every
    /// command does: for commands that change a store and print nothing.
    func changing(_ body: (SliceDB) throws -> Void) throws {
        try runReporting {
            let db = try openExisting()
            try body(db)
            try db.close()
        }
    }

    /// Opens the store, creating one when the directory has none: for commands that write.
    func open() throws -> SliceDB { try open(readOnly: false) }

    /// The tree when `directory` is an etcd URL (`etcd://HOST:PORT,.../PREFIX`, README "Shared
    /// mounts on etcd"), nil for a data directory. get, put, delete and scan take either.
    func etcdTree() throws -> EtcdKeyValue? {
        guard EtcdTarget.isEtcdURL(directory) else { return nil }
        do {
            return EtcdKeyValue(try EtcdTarget(parsing: directory))
        } catch {
            throw CLIError(error.description)
        }
    }

    /// Opens a store that must already exist: a mistyped path is an error, and nothing is
    /// created there. `readOnly`: nothing is written either (read commands, `check`), so they
    /// work on a full disk and leave a damaged store as it is.
    func openExisting(readOnly: Bool = false) throws -> SliceDB {
        try StoreDirectory.requireStore(at: directory)
        return try open(readOnly: readOnly)
    }

    private func open(readOnly: Bool) throws -> SliceDB {
        var o = options
        o.readOnly = readOnly
        let db: SliceDB
        do {
            if let snapshot {
                guard readOnly else { throw CLIError("snapshots are read-only: --snapshot works with reads only") }
                db = try SliceDB.openSnapshot(named: snapshot, of: directory, options: o)
            } else {
                db = try SliceDB(path: directory, options: o)
            }
        } catch let e as SliceError where e.code == .locked {
            throw CLIError(
                "the store at \(directory) is in use by another process (slice mount, or another slice command)")
        }
        // Whatever recovery dropped is said, every time.
        for note in db.recoveryNotes { Terminal.error("recovery: \(note)") }
        return db
    }
}

extension Options.SyncPolicy: ExpressibleByArgument {}
extension WALRecovery: ExpressibleByArgument {}
extension Compression: ExpressibleByArgument {}
extension CompactionStyle: ExpressibleByArgument {}

/// An error the CLI reports as `slice: error: <message>` with exit status 2.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// Runs a command body, turning errors into a message on stderr and exit status 2.
func runReporting(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as ExitCode {
        throw e
    } catch {
        Terminal.error("error: \(error)")
        throw ExitCode(2)
    }
}

enum Terminal {
    static let stderrIsTerminal = isatty(2) == 1

    static func error(_ message: String) {
        let line = "slice: \(message)\n"
        _ = line.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
    }

    /// A progress line on stderr, only when it is a terminal.
    static func progress(_ label: String, _ done: Int, _ total: Int) {
        guard stderrIsTerminal else { return }
        let pct = total == 0 ? 100 : done * 100 / total
        let line = "\r\(label): \(done)/\(total) (\(pct)%)" + (done >= total ? "\n" : "")
        _ = line.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
    }

    static func writeStdout(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { buf in
            var off = 0
            while off < buf.count {
                let n = write(1, buf.baseAddress! + off, buf.count - off)
                if n <= 0 {
                    if errno == EINTR { continue }
                    return
                }
                off += n
            }
        }
    }
}

/// Reads all of standard input (or a file descriptor) as bytes; more than `limit` bytes is an
/// error (nothing is kept past it).
func readAll(fd: Int32, limit: Int = Int.max) throws -> [UInt8] {
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        if out.count > limit {
            throw CLIError("the input is larger than \(limit) bytes, the most this store takes in one value")
        }
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            throw CLIError("cannot read input: \(String(cString: strerror(errno)))")
        }
        if n == 0 { return out }
        out.append(contentsOf: chunk[0..<n])
    }
}
