import ArgumentParser
import Foundation
import SliceKV

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the store's statistics.")

    @OptionGroup var store: StoreOptions
    @Flag(help: "JSON instead of a summary.") var json = false
    @Flag(help: "Prometheus text exposition instead of a summary.") var prometheus = false

    func run() throws {
        try runReporting {
            let db = try store.openExisting(readOnly: true)
            let s = db.stats()
            print(json ? s.jsonText : prometheus ? s.prometheusText : s.summary)
        }
    }
}

struct Flush: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write memtables to table files.")
    @OptionGroup var store: StoreOptions

    func run() throws { try store.changing { try $0.flush() } }
}

struct Checkpoint: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy the store, as of one instant, into a new directory that opens as a store.",
        discussion: """
            Tables and sealed blob files are hard-linked where the filesystem allows (copied \
            otherwise), so a checkpoint takes little space until the store compacts. DEST must \
            not exist. A mounted store is locked by its mount.
            """)
    @OptionGroup var store: StoreOptions
    @Argument(help: "Directory to create for the checkpoint.") var destination: String

    func run() throws {
        try store.changing { try $0.checkpoint(to: destination) }
        Terminal.error("checkpoint written to \(destination)")
    }
}

struct Compact: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a full manual compaction.")
    @OptionGroup var store: StoreOptions

    func run() throws {
        try runReporting {
            let db = try store.openExisting()
            try db.compact { done, total in Terminal.progress("compact (levels)", done, total) }
            try db.close()
            let s = db.stats()
            Terminal.error("compacted: \(s.totalFiles) files, \(s.totalTableBytes) bytes")
        }
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Verify every checksum of every live table and WAL; exit 2 naming the damaged file.",
        discussion: """
            Opens the store read-only (nothing is written, so a damaged store stays as it is and a \
            full disk is no obstacle). Exits 2 when anything is damaged, when recovery would drop \
            anything but an unfinished write at the end of the newest WAL (which is a warning), \
            and when an earlier lenient recovery dropped damaged records (their WAL is kept as \
            NNNNNN.log.damaged until removed).
            """)
    @OptionGroup var store: StoreOptions

    func run() throws {
        try runReporting {
            let db = try store.openExisting(readOnly: true)
            let report = try db.check { done, total in Terminal.progress("check (tables)", done, total) }
            let dropped = db.recoveryNotes.filter { $0.hasPrefix("DROPPED") || $0.hasPrefix("did not replay") }
            let keptAside = ((try? FileManager.default.contentsOfDirectory(atPath: store.directory)) ?? [])
                .filter { $0.hasSuffix(".damaged") }.sorted()
            guard dropped.isEmpty && keptAside.isEmpty else {
                var why = dropped
                for name in keptAside {
                    why.append("\(store.directory)/\(name): records an earlier recovery dropped as damaged")
                }
                throw CLIError("damage found:\n  " + why.joined(separator: "\n  "))
            }
            print(
                "ok: \(report.tables) tables (\(report.tableBytes) bytes, \(report.entries) entries), \(report.walFiles) WAL files (\(report.walBytes) bytes), \(report.blobValues) blob values (\(report.blobBytes) bytes), \(report.indirectValues) chunked values"
            )
        }
    }
}

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load a store with sample data, read it back, scan a prefix and print statistics.")
    @OptionGroup var store: StoreOptions
    @Option(help: "Number of entries to load.") var count: Int = 200_000

    func run() throws {
        try runReporting {
            let db = try store.open()
            let clock = ContinuousClock()
            let t0 = clock.now
            var batch = WriteBatch()
            for i in 0..<count {
                batch.put("user:\(String(i, radix: 16))", "{\"id\":\(i),\"name\":\"user \(i)\"}")
                if batch.count == 1000 {
                    try db.write(batch)
                    batch.clear()
                }
            }
            try db.write(batch)
            let loaded = clock.now - t0
            var found = 0
            for i in stride(from: 0, to: count, by: 7) where try db.get("user:\(String(i, radix: 16))") != nil {
                found += 1
            }
            let read = clock.now - t0 - loaded
            let cursor = try db.scan(prefix: Array("user:ff".utf8))
            var prefixCount = 0
            while try cursor.next() != nil { prefixCount += 1 }
            print("loaded \(count) entries in \(loaded), read back \(found) in \(read)")
            print("prefix user:ff has \(prefixCount) keys")
            db.stats().print()
            try db.close()
        }
    }
}
