import ArgumentParser
import SliceFS
import SliceKV

#if canImport(Glibc)
    import Glibc
#endif

struct Put: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Store a value. Reads the value from standard input when VALUE is omitted.",
        discussion: "Standard input is streamed into the store, so a value may be larger than memory.")

    @OptionGroup var store: StoreOptions
    @Flag(help: "Read keys in the escaped form scan prints (\\t \\n \\\\ \\xNN).") var escaped = false
    @Argument(help: "The key.") var key: String
    @Argument(help: "The value; omit to read it from standard input.") var value: String?

    func run() throws {
        try runReporting {
            if let tree = try store.etcdTree() {
                defer { tree.close() }
                let k = try Escaping.key(key, escaped: escaped)
                try tree.put(k, value.map { Array($0.utf8) } ?? readAll(fd: 0, limit: tree.maxValueSize))
                return
            }
            let db = try store.open()
            let k = try Escaping.key(key, escaped: escaped)
            if let value {
                try db.put(k, Array(value.utf8))
            } else {
                try db.put(k, contentsOf: 0)
            }
            try db.close()
        }
    }
}

struct Get: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a value's raw bytes on standard output; exit 1 when the key is absent.")

    @OptionGroup var store: StoreOptions
    @Flag(help: "Read keys in the escaped form scan prints (\\t \\n \\\\ \\xNN).") var escaped = false
    @Argument var key: String

    func run() throws {
        try runReporting {
            if let tree = try store.etcdTree() {
                defer { tree.close() }
                guard let value = try tree.get(try Escaping.key(key, escaped: escaped)) else {
                    Terminal.error("key not found: \(key)")
                    throw ExitCode(1)
                }
                Terminal.writeStdout(value)
                return
            }
            let db = try store.openExisting(readOnly: true)
            let k = try Escaping.key(key, escaped: escaped)
            let snapshot = try db.snapshot()
            guard let size = try db.valueSize(k, snapshot: snapshot) else {
                Terminal.error("key not found: \(key)")
                throw ExitCode(1)
            }
            // Streamed in 1 MiB pieces: a value larger than memory prints fine.
            var buffer = [UInt8](repeating: 0, count: Int(min(size, 1 << 20)))
            var offset: UInt64 = 0
            while offset < size {
                let n =
                    try buffer.withUnsafeMutableBytes { try db.read(k, offset: offset, into: $0, snapshot: snapshot) }
                    ?? 0
                if n == 0 { break }
                Terminal.writeStdout(Array(buffer[0..<n]))
                offset += UInt64(n)
            }
        }
    }
}

struct Delete: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Delete a key (no error when it is absent).")

    @OptionGroup var store: StoreOptions
    @Flag(help: "Read keys in the escaped form scan prints (\\t \\n \\\\ \\xNN).") var escaped = false
    @Argument var key: String

    func run() throws {
        try runReporting {
            if let tree = try store.etcdTree() {
                defer { tree.close() }
                try tree.delete(try Escaping.key(key, escaped: escaped))
                return
            }
            let db = try store.openExisting()
            try db.delete(try Escaping.key(key, escaped: escaped))
            try db.close()
        }
    }
}

struct Scan: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print entries in key order, one `key<TAB>value` line each.",
        discussion: """
            Bytes that are not printable are escaped: \\t \\n \\r \\\\ and \\xNN (invalid UTF-8 \
            and control characters). `slice import` reads this format back exactly.
            """)

    @OptionGroup var store: StoreOptions
    @Flag(help: "Read keys in the escaped form scan prints (\\t \\n \\\\ \\xNN).") var escaped = false
    @Option(help: "Only keys starting with this prefix.") var prefix: String?
    @Option(help: "First key (inclusive).") var start: String?
    @Option(help: "End key (exclusive).") var end: String?
    @Option(help: "Stop after this many entries.") var limit: Int?
    @Flag(name: .customLong("keys-only"), help: "Print only keys.") var keysOnly = false
    @Flag(help: "From the end of the range down to its start.") var reverse = false

    func run() throws {
        try runReporting {
            let tree = try store.etcdTree()
            let db = tree == nil ? try store.openExisting(readOnly: true) : nil
            var range = KeyRange()
            if let prefix { range = .prefix(try Escaping.key(prefix, escaped: escaped)) }
            if let start {
                let s = try Escaping.key(start, escaped: escaped)
                if range.start.map({ s.lexicographicallyPrecedes($0) }) != true { range.start = s }
            }
            if let end {
                let e = try Escaping.key(end, escaped: escaped)
                if range.end.map({ e.lexicographicallyPrecedes($0) }) ?? true { range.end = e }
            }
            var out: [UInt8] = []
            var n = 0
            func emit(_ kv: KeyValue) {
                Escaping.escape(kv.key, into: &out)
                if !keysOnly {
                    out.append(0x09)
                    Escaping.escape(kv.value, into: &out)
                }
                out.append(0x0a)
                n += 1
                if out.count > 1 << 16 {
                    Terminal.writeStdout(out)
                    out.removeAll(keepingCapacity: true)
                }
            }
            if let tree {
                defer { tree.close() }
                if reverse { throw CLIError("--reverse is not offered on an etcd tree") }
                try tree.scan(from: range.start ?? [], to: range.end, keysOnly: keysOnly) { k, v in
                    guard limit.map({ n < $0 }) ?? true else { return false }
                    emit(KeyValue(key: k, value: v))
                    return true
                }
            } else {
                let cursor = try db!.scan(range, reverse: reverse)
                while limit.map({ n < $0 }) ?? true {
                    // Keys only: large values are not read.
                    let entry = keysOnly ? try cursor.nextKey().map { KeyValue(key: $0, value: []) } : try cursor.next()
                    guard let kv = entry else { break }
                    emit(kv)
                }
            }
            Terminal.writeStdout(out)
        }
    }
}

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Bulk-load `key<TAB>value` lines (the format scan prints) from FILE or standard input.")

    @OptionGroup var store: StoreOptions
    @Argument(help: "Input file; standard input when omitted.") var file: String?
    @Option(help: "Entries per atomic write batch.") var batchSize: Int = 1000

    func run() throws {
        try runReporting {
            let db = try store.open()
            let fd: Int32 =
                try file.map { path in
                    let fd = open(path, O_RDONLY)
                    guard fd >= 0 else { throw CLIError("cannot open \(path): \(String(cString: strerror(errno)))") }
                    return fd
                } ?? 0
            let total = file.flatMap { path -> Int? in
                var st = stat()
                return stat(path, &st) == 0 ? Int(st.st_size) : nil
            }
            var reader = LineReader(fd: fd)
            var batch = WriteBatch()
            var lineNumber = 0
            var imported = 0
            var lastReport = 0
            while let line = try reader.nextLine() {
                lineNumber += 1
                if line.isEmpty { continue }
                guard let tab = line.firstIndex(of: 0x09) else {
                    throw CLIError("line \(lineNumber): no TAB between key and value")
                }
                let key = try Escaping.unescape(line[..<tab], line: lineNumber)
                let value = try Escaping.unescape(line[(tab + 1)...], line: lineNumber)
                guard !key.isEmpty else { throw CLIError("line \(lineNumber): empty key") }
                batch.put(key, value)
                imported += 1
                if batch.count >= batchSize {
                    try db.write(batch)
                    batch.clear()
                }
                if let total, reader.bytesRead - lastReport > 1 << 20 {
                    lastReport = reader.bytesRead
                    Terminal.progress("import (bytes)", reader.bytesRead, total)
                }
            }
            if !batch.isEmpty { try db.write(batch) }
            if let total { Terminal.progress("import (bytes)", total, total) }
            try db.close()
            if fd != 0 { close(fd) }
            Terminal.error("imported \(imported) entries")
        }
    }
}

/// Buffered line reader over a file descriptor.
struct LineReader {
    let fd: Int32
    var buffer: [UInt8] = []
    var position = 0
    var eof = false
    var bytesRead = 0

    init(fd: Int32) { self.fd = fd }

    mutating func nextLine() throws -> ArraySlice<UInt8>? {
        while true {
            if let nl = buffer[position...].firstIndex(of: 0x0a) {
                let line = buffer[position..<nl]
                position = nl + 1
                return line
            }
            if eof {
                guard position < buffer.count else { return nil }
                let line = buffer[position...]
                position = buffer.count
                return line
            }
            buffer.removeFirst(position)
            position = 0
            var chunk = [UInt8](repeating: 0, count: 1 << 20)
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw CLIError("read failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 {
                eof = true
            } else {
                buffer.append(contentsOf: chunk[0..<n])
                bytesRead += n
            }
        }
    }
}
