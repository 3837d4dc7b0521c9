import ArgumentParser
import Foundation
import SliceKV

#if canImport(Glibc)
    import Glibc
#endif

/// Test support for the crash tests: writes with `sync: always` from several threads forever,
/// reporting each operation on stdout before (`B`) and after (`A`) it is acknowledged, until it
/// is killed. Small memtables and files make flushes and compactions frequent.
struct CrashWriter: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crash-writer", abstract: "Test support: write until killed, reporting acknowledgements.",
        shouldDisplay: false)

    @Argument var directory: String
    @Option var threads: Int = 4
    @Option var keys: Int = 2000
    @Option var seed: UInt64 = 1
    /// Instead: commit one large value ("C size" when acknowledged), then stream another in
    /// 1 MiB pieces ("W n" after each) that is never committed.
    @Flag var stream = false
    @Option(name: .customLong("compaction-style")) var compactionStyle: CompactionStyle = .leveled

    func run() throws {
        if stream {
            try runStream()
            return
        }
        var o = CrashWriter.busyOptions(sync: .always)
        o.compaction.style = compactionStyle
        let db: SliceDB
        do {
            db = try SliceDB(path: directory, options: o)
        } catch {
            Terminal.error("crash-writer: \(error)")
            throw ExitCode(2)
        }
        let group = DispatchGroup()
        for t in 0..<threads {
            let seed = self.seed
            let keys = self.keys
            group.enter()
            Thread {
                var rng = seed &* 6_364_136_223_846_793_005 &+ UInt64(t) &* 1_442_695_040_888_963_407
                var n = 0
                while true {
                    rng = rng &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                    let k = Int((rng >> 33) % UInt64(keys))
                    let key = "t\(t)-k\(k)"
                    n += 1
                    let isDelete = (rng >> 20) % 10 == 0
                    let isBatch = (rng >> 24) % 10 == 0
                    let value = "v\(t)-\(n)-" + String(repeating: "x", count: Int((rng >> 40) % 200))
                    do {
                        if isDelete {
                            emit("B \(t) D \(key)\n")
                            try db.delete(key)
                        } else if isBatch {
                            // A batch writes key and key+"b" with the same value, atomically.
                            emit("B \(t) P \(key) \(value) \(key)b\n")
                            var b = WriteBatch()
                            b.put(key, value)
                            b.put(key + "b", value)
                            try db.write(b)
                        } else {
                            emit("B \(t) P \(key) \(value)\n")
                            try db.put(key, value)
                        }
                        emit("A \(t)\n")
                    } catch {
                        emit("E \(t) \(error)\n")
                        Glibc.exit(3)
                    }
                    if n % 20 == 0 {
                        let s = db.stats()
                        emit("S \(t) \(s.flushes) \(s.compactions)\n")
                    }
                }
            }.start()
        }
        group.wait()
    }
}

extension CrashWriter {
    func runStream() throws {
        var o = Options()
        o.syncPolicy = .always
        let db = try SliceDB(path: directory, options: o)
        let piece = [UInt8](repeating: 0x5a, count: 1 << 20)
        let committed = try db.valueWriter(for: Array("committed".utf8))
        for _ in 0..<3 { try committed.write(piece) }
        try committed.commit()
        emit("C \(3 << 20)\n")
        let partial = try db.valueWriter(for: Array("partial".utf8))
        for n in 1...1024 {
            try partial.write(piece)
            emit("W \(n)\n")
            usleep(5_000)
        }
        // Never committed: the parent kills us first.
        while true { sleep(1) }
    }
}

/// One `write(2)` per line (short lines are written whole), so lines from different threads
/// never interleave in the pipe.
private func emit(_ line: String) {
    Terminal.writeStdout(Array(line.utf8))
}

extension CrashWriter {
    /// Options under which a short run flushes, compacts and fills blob files: small memtables
    /// and files, and values over 150 bytes (about a third of the test writers') in blob files
    /// that fill and seal quickly, so kills also land in blob writes, seals and collection.
    static func busyOptions(sync: Options.SyncPolicy) -> Options {
        var o = Options()
        o.syncPolicy = sync
        o.memtableSize = 32 << 10
        o.targetFileSize = 16 << 10
        o.level1MaxBytes = 64 << 10
        o.compaction.maxSSTablesPerJob = 4
        o.blobThreshold = 150
        o.blobFileSize = 64 << 10
        return o
    }
}
