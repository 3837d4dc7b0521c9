import ArgumentParser
import Foundation
import SliceKV

#if canImport(Glibc)
    import Glibc
#endif

/// Test support for the linearizability tests: client threads that make random calls on a few
/// keys, printing each call's invocation and completion with CLOCK_MONOTONIC times, in the
/// format that `HistoryLog` (Tests/Linearizability) reads:
///
/// ```
/// I <time> <client> put <key> <id> | delete <key> | get <key> | batch <key>=<id|->... | read <key>...
/// R <time> <client> [<id|->...]     -- what a get or read saw ("-": absent)
/// E <time> <client> <message>       -- a call failed (its outcome is unknown); the client goes on
/// ```
///
/// On a store (the default) the calls are the engine's, and batches and snapshot reads span
/// several keys. With `--files` the directory is a mount, a key is a file, and the calls are
/// system calls: a put writes a private temporary file and renames it over the key's (a
/// rename replaces a file atomically; writing the file in place would not), a get reads the
/// whole file (ENOENT: absent), a delete unlinks it. Values are ids, stored with padding as
/// `HistoryValue` encodes them. A client stops when the mount's daemon is gone (ENOTCONN).
/// Exit status 3 when a call failed.
struct HistoryClient: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history-client", abstract: "Test support: random calls on a few keys, logged with their times.",
        shouldDisplay: false)

    @Argument var directory: String
    @Flag(help: "The directory is a mount: operate on its files.") var files = false
    @Option var threads = 2
    @Option var keys = 5
    @Option(help: "Calls per thread; 0: until killed.") var ops = 0
    @Option(help: "Client id of the first thread; the others follow.") var client = 0
    @Option var seed: UInt64 = 1
    @Option var sync: Options.SyncPolicy = .always

    func run() throws {
        let store: HistoryStore
        do {
            store = files ? FileStore(directory: directory) : try EngineStore(directory: directory, sync: sync)
        } catch {
            Terminal.error("history-client: \(error)")
            throw ExitCode(2)
        }
        let loop = ClientLoop(files: files, keys: keys, ops: ops, seed: seed)
        let failures = FailureCount()
        let group = DispatchGroup()
        for t in 0..<threads {
            let id = client + t
            group.enter()
            Thread {
                failures.add(loop.run(id: id, store: store))
                group.leave()
            }.start()
        }
        group.wait()
        try store.close()
        if failures.total > 0 { throw ExitCode(3) }
    }
}

/// One client thread of `slice history-client`.
struct ClientLoop: Sendable {
    let files: Bool
    let keys: Int
    let ops: Int
    let seed: UInt64

    /// Returns the number of calls that failed.
    func run(id: Int, store: HistoryStore) -> Int {
        var rng = seed &* 6_364_136_223_846_793_005 &+ UInt64(id + 1) &* 1_442_695_040_888_963_407
        func random(_ n: Int) -> Int {
            rng = rng &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((rng >> 33) % UInt64(n))
        }
        func randomKeys() -> [String] {
            var picked: [String] = []
            let count = min(keys, 2 + random(2))
            while picked.count < count {
                let k = "k\(random(keys))"
                if !picked.contains(k) { picked.append(k) }
            }
            return picked
        }
        var n = 0
        var failed = 0
        while ops == 0 || n < ops {
            n += 1
            let key = "k\(random(keys))"
            let value = "c\(id)-\(n)"
            let dice = random(100)
            let call: HistoryCall
            if files {
                call = dice < 45 ? .get(key) : dice < 85 ? .put(key, value) : .delete(key)
            } else if dice < 35 {
                call = .get(key)
            } else if dice < 55 {
                call = .put(key, value)
            } else if dice < 65 {
                call = .delete(key)
            } else if dice < 80 {
                call = .batch(randomKeys().map { ($0, random(4) == 0 ? nil : value) })
            } else {
                call = .read(randomKeys())
            }
            emit("I \(now()) \(id) \(call.logged)\n")
            do {
                let seen = try store.perform(call)
                let shown = seen.map { " " + ($0 ?? "-") }.joined()
                emit("R \(now()) \(id)\(shown)\n")
            } catch {
                emit("E \(now()) \(id) \(error)".replacingOccurrences(of: "\n", with: " ") + "\n")
                failed += 1
                if let f = error as? FileStore.Failure, f.mountIsGone { break }
            }
        }
        return failed
    }
}

/// Calls that failed, over all client threads.
final class FailureCount: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add(_ k: Int) { lock.withLock { n += k } }
    var total: Int { lock.withLock { n } }
}

/// One call of `slice history-client`.
enum HistoryCall {
    case put(String, String)
    case delete(String)
    case get(String)
    case batch([(String, String?)])
    case read([String])

    var logged: String {
        switch self {
        case .put(let k, let v): return "put \(k) \(v)"
        case .delete(let k): return "delete \(k)"
        case .get(let k): return "get \(k)"
        case .batch(let w): return "batch " + w.map { "\($0.0)=\($0.1 ?? "-")" }.joined(separator: " ")
        case .read(let keys): return "read " + keys.joined(separator: " ")
        }
    }

    /// Tests/Linearizability/HistoryValue.swift: the id, a dot, padding that follows from the id.
    static func encode(_ id: String) -> [UInt8] {
        let padding = id.utf8.reduce(0) { ($0 &* 31 &+ Int($1)) % 300 }
        return Array(id.utf8) + [UInt8(ascii: ".")] + [UInt8](repeating: UInt8(ascii: "x"), count: padding)
    }

    /// The id of stored bytes; anything not made by `encode` comes back as a name no call used.
    static func decode(_ bytes: [UInt8]) -> String {
        if let dot = bytes.firstIndex(of: UInt8(ascii: ".")) {
            let id = String(decoding: bytes[..<dot], as: UTF8.self)
            if encode(id) == bytes { return id }
        }
        let shown = bytes.prefix(16).map { b -> Character in
            let c = Character(Unicode.Scalar(b))
            return b < 128 && (c.isLetter || c.isNumber || c == "-" || c == ".") ? c : "?"
        }
        return "!unexpected(\(bytes.count)b:\(String(shown)))"
    }
}

/// Where `slice history-client` makes its calls.
protocol HistoryStore: Sendable {
    /// What a get or read saw, one id per key (nil: absent); [] for writes.
    func perform(_ call: HistoryCall) throws -> [String?]
    func close() throws
}

/// The engine, opened with small memtables, files and blob threshold (as `crash-writer`), so
/// that flushes, compactions and blob files happen within a short run.
final class EngineStore: HistoryStore {
    let db: SliceDB

    init(directory: String, sync: Options.SyncPolicy) throws {
        db = try SliceDB(path: directory, options: CrashWriter.busyOptions(sync: sync))
    }

    func perform(_ call: HistoryCall) throws -> [String?] {
        switch call {
        case .put(let k, let v):
            try db.put(Array(k.utf8), HistoryCall.encode(v))
        case .delete(let k):
            try db.delete(k)
        case .get(let k):
            return [try db.get(Array(k.utf8)).map(HistoryCall.decode)]
        case .batch(let writes):
            var b = WriteBatch()
            for (k, v) in writes {
                if let v { b.put(Array(k.utf8), HistoryCall.encode(v)) } else { b.delete(Array(k.utf8)) }
            }
            try db.write(b)
        case .read(let keys):
            let snapshot = try db.snapshot()
            return try keys.map { try db.get(Array($0.utf8), snapshot: snapshot).map(HistoryCall.decode) }
        }
        return []
    }

    func close() throws { try db.close() }
}

/// A mounted store, through system calls.
final class FileStore: HistoryStore {
    let directory: String

    init(directory: String) { self.directory = directory }

    struct Failure: Error, CustomStringConvertible {
        let description: String
        let code: Int32
        init(_ what: String, _ path: String) {
            code = errno
            description = "\(what) \(path): \(String(cString: strerror(code)))"
        }

        /// The mount's daemon is gone: nothing can succeed any more.
        var mountIsGone: Bool { code == ENOTCONN || code == ECONNABORTED }
    }

    func perform(_ call: HistoryCall) throws -> [String?] {
        switch call {
        case .put(let k, let v):
            // Private to the thread: named after the value's client.
            let tmp = "\(directory)/.tmp-\(v.split(separator: "-")[0])"
            let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            guard fd >= 0 else { throw Failure("open", tmp) }
            let bytes = HistoryCall.encode(v)
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard n == bytes.count else {
                Glibc.close(fd)
                throw Failure("write", tmp)
            }
            guard Glibc.close(fd) == 0 else { throw Failure("close", tmp) }
            guard rename(tmp, "\(directory)/\(k)") == 0 else { throw Failure("rename to", k) }
        case .delete(let k):
            guard unlink("\(directory)/\(k)") == 0 || errno == ENOENT else { throw Failure("unlink", k) }
        case .get(let k):
            let fd = open("\(directory)/\(k)", O_RDONLY)
            if fd < 0 {
                if errno == ENOENT { return [nil] }
                throw Failure("open", k)
            }
            defer { Glibc.close(fd) }
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let r = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if r < 0 { throw Failure("read", k) }
                if r == 0 { break }
                bytes += chunk[0..<r]
            }
            return [HistoryCall.decode(bytes)]
        case .batch, .read:
            throw Failure("no atomic multi-key call through files:", directory)
        }
        return []
    }

    func close() throws {}
}

private func now() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// One `write(2)` per line, so lines of different threads never interleave in the pipe.
private func emit(_ line: String) {
    Terminal.writeStdout(Array(line.utf8))
}
