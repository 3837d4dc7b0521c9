import Foundation
import Testing

@testable import SliceKV

@Suite struct ParallelCompactionTests {
    /// A store whose L1..L3 hold many small files (tiny levels), and the model of its contents.
    func filledStore(_ dir: TempDir, concurrent: Int) throws -> (SliceDB, [[UInt8]: [UInt8]]) {
        var o = tinyOptions()
        o.compaction.maxConcurrentCompactions = concurrent
        o.compaction.enableParallelMerge = false
        let db = try SliceDB(path: dir.path, options: o)
        var model: [[UInt8]: [UInt8]] = [:]
        var rng = SeededRandom(seed: 42)
        for round in 0..<3 {
            for _ in 0..<4000 {
                let k = bytes(String(format: "key%05d", Int.random(in: 0..<6000, using: &rng)))
                let v =
                    bytes("round \(round) ")
                    + Array(repeating: UInt8(ascii: "v"), count: Int.random(in: 20...90, using: &rng))
                try db.put(k, v)
                model[k] = v
            }
            try db.flush()
        }
        for i in stride(from: 0, to: 6000, by: 13) {
            let k = bytes(String(format: "key%05d", i))
            try db.delete(k)
            model[k] = nil
        }
        return (db, model)
    }

    /// With two compaction threads, a manual compaction runs two of its jobs at the same
    /// instant (both registered and running: the peak counts jobs between start and end), and
    /// the store holds exactly what was written.
    @Test func manualCompactionRunsDisjointJobsAtOnce() throws {
        let dir = TempDir()
        let (db, model) = try filledStore(dir, concurrent: 2)
        let before = db.stats()
        #expect(before.levels.dropFirst(2).contains { $0.files > 0 }, "data below L1 before the compaction")
        try db.compact()
        let s = db.stats()
        #expect(s.compaction.manualPeakRunning == 2, "\(s.compaction)")
        #expect(s.compaction.overlappedJobs >= 2)
        #expect(s.compaction.manualJobs > before.compaction.manualJobs + 2)
        #expect(s.compaction.running == 0)
        let written = s.compaction.levels.reduce(0) { $0 + $1.bytesWritten }
        #expect(written > 0 && s.compaction.levels.contains { $0.jobs > 0 && $0.micros > 0 })
        #expect(s.prometheusText.contains("slice_manual_compaction_peak_running 2"))
        #expect(s.jsonText.contains("\"overlappedJobs\""))
        let all = try allEntries(db)
        #expect(all.count == model.count)
        for kv in all { #expect(model[kv.key] == kv.value) }
        _ = try db.check()
        try db.close()
    }

    /// With one compaction thread, a manual compaction's jobs run one after the other.
    @Test func oneThreadRunsOneJobAtATime() throws {
        let dir = TempDir()
        let (db, model) = try filledStore(dir, concurrent: 1)
        try db.compact()
        let s = db.stats()
        #expect(s.compaction.manualPeakRunning == 1)
        #expect(s.compaction.peakRunning == 1)
        #expect(try allEntries(db).count == model.count)
        try db.close()
    }
}
