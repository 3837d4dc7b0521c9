import Foundation
import Testing

@testable import SliceKV

/// Kill a real writer process (SIGKILL) at random moments, reopen, and check that every
/// acknowledged write is there and nothing that was never written appears.
@Suite struct CrashTests {
    /// What the child reported: per key the last acknowledged value (nil = deleted), plus the
    /// operations that were begun but not acknowledged when it died (they may or may not apply).
    struct Ledger {
        var acknowledged: [String: String?] = [:]
        var pending: [Int: [String: String?]] = [:]
        var flushes = 0
        var compactions = 0
        var acks = 0

        mutating func apply(_ line: Substring) {
            let parts = line.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count >= 2, let thread = Int(parts[1]) else { return }
            switch parts[0] {
            case "B" where parts.count >= 4:
                var ops: [String: String?] = [:]
                if parts[2] == "D" {
                    ops[String(parts[3])] = .some(nil)
                } else if parts.count >= 5 {
                    ops[String(parts[3])] = .some(String(parts[4]))
                    if parts.count >= 6 { ops[String(parts[5])] = .some(String(parts[4])) }
                }
                pending[thread] = ops
            case "A":
                for (k, v) in pending[thread] ?? [:] { acknowledged[k] = v }
                pending[thread] = nil
                acks += 1
            case "S" where parts.count >= 4:
                flushes = max(flushes, Int(parts[2]) ?? 0)
                compactions = max(compactions, Int(parts[3]) ?? 0)
            default: break
            }
        }
    }

    /// SIGKILL in the middle of a streaming put: the partial value is invisible after
    /// recovery, its bytes are accounted as garbage at once, and nothing leaks.
    @Test func killDuringStreamingPutLeavesNothingVisibleOrLeaked() throws {
        let dir = TempDir("slice-crash")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: sliceExecutable)
        p.arguments = ["crash-writer", dir.path, "--stream"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        var text = ""
        let reader = out.fileHandleForReading
        while !text.contains("W 8\n") {
            let d = reader.availableData
            if d.isEmpty { break }
            text += String(decoding: d, as: UTF8.self)
        }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        #expect(text.contains("C \(3 << 20)"))
        #expect(text.contains("W 8"))

        let db = try SliceDB(path: dir.path)
        // A new blob file after recovery must not reuse the number of one the crashed process
        // created after its last MANIFEST edit (it would truncate it).
        try db.put(bytes("after"), [UInt8](repeating: 0x11, count: 1 << 20))
        try db.flush()
        #expect(try db.get(bytes("committed")) == [UInt8](repeating: 0x5a, count: 3 << 20))
        #expect(try db.get(bytes("after")) == [UInt8](repeating: 0x11, count: 1 << 20))
        #expect(try db.get(bytes("partial")) == nil)
        let stats = db.stats()
        // Counted as garbage at recovery, and freed since if their file held nothing else.
        #expect(
            stats.blobGarbageBytes + stats.blobBytesReclaimed >= 6 << 20, "the streamed bytes count as garbage")
        #expect(stats.blobLiveBytes < 6 << 20)
        _ = try db.check()
        try db.delete(bytes("committed"))
        try db.delete(bytes("after"))
        try db.compact()
        // Closing seals the file "after" was written to; then every blob file is all garbage.
        try db.close()
        _ = try SliceDB(path: dir.path)
        #expect(files(in: dir.path, suffix: ".blob").isEmpty, "every blob file is freed once nothing refers to it")
    }

    /// Under either compaction style (universal moves whole runs and merges many at once).
    @Test(arguments: [CompactionStyle.leveled, .universal]) func acknowledgedWritesSurviveSIGKILL(
        style: CompactionStyle
    )
        throws
    {
        let dir = TempDir("slice-crash")
        let cycles = Int(ProcessInfo.processInfo.environment["SLICE_CRASH_CYCLES"] ?? "") ?? 20
        var ledger = Ledger()
        var rng = SeededRandom(seed: 99)
        var sawFlush = false
        var sawCompaction = false
        // Extra cycles, with longer runs, only when a slow machine (or ThreadSanitizer, ~10x)
        // has not yet reached a flush and a compaction before a kill.
        var cycle = 0
        while cycle < cycles || (!(sawFlush && sawCompaction) && cycle < 3 * cycles) {
            defer { cycle += 1 }
            let slow = cycle >= cycles
            let p = Process()
            p.executableURL = URL(fileURLWithPath: sliceExecutable)
            p.arguments = [
                "crash-writer", dir.path, "--seed", "\(cycle + 1)", "--keys", "400", "--compaction-style",
                style.rawValue,
            ]
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            try p.run()
            // Once it has acknowledged a write (a loaded machine may take a while to start it),
            // let it run 100-600 ms more (long enough to flush and compact), then kill it outright.
            var head = Data()
            while !String(decoding: head, as: UTF8.self).contains("\nA ") {
                let d = out.fileHandleForReading.availableData
                if d.isEmpty { break }
                head.append(d)
            }
            usleep(UInt32((slow ? 1_000_000 : 100_000) + Int.random(in: 0..<500_000, using: &rng)))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            #expect(p.terminationReason == .uncaughtSignal, "cycle \(cycle): the writer exited by itself")
            let data = head + out.fileHandleForReading.readDataToEndOfFile()
            let text = String(decoding: data, as: UTF8.self)
            var before = ledger
            before.pending = [:]
            // Only complete lines count: the last one may be cut.
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            for line in lines.dropLast() { ledger.apply(line) }
            sawFlush = sawFlush || ledger.flushes > 0
            sawCompaction = sawCompaction || ledger.compactions > 0
            #expect(ledger.acks > before.acks, "cycle \(cycle): no write was acknowledged")

            var verifying = tinyOptions()
            verifying.compaction.style = style
            let db = try SliceDB(path: dir.path, options: verifying)
            var actual: [String: String] = [:]
            for kv in try allEntries(db) { actual[kv.keyString] = kv.valueString }
            var maybe: [String: Set<String?>] = [:]
            for ops in ledger.pending.values { for (k, v) in ops { maybe[k, default: []].insert(v) } }
            for (key, value) in ledger.acknowledged {
                let got = actual[key]
                if got != value && !(maybe[key]?.contains(got) ?? false) {
                    Issue.record("cycle \(cycle): key \(key) is \(got ?? "absent"), acknowledged \(value ?? "deleted")")
                }
            }
            for (key, value) in actual where ledger.acknowledged[key] == nil {
                if !(maybe[key]?.contains(value) ?? false) {
                    Issue.record("cycle \(cycle): key \(key) = \(value) was never written")
                }
            }
            // The in-flight operations are settled now: adopt what recovery decided.
            for k in maybe.keys { ledger.acknowledged[k] = actual[k].map { Optional($0) } ?? .some(nil) }
            ledger.pending = [:]
            _ = try db.check()
            try db.close()
        }
        #expect(sawFlush, "no flush happened before a kill")
        #expect(sawCompaction, "no compaction happened before a kill")
    }
}
