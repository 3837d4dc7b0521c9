import Foundation
import Testing

@testable import SliceKV

@Suite struct UniversalCompactionTests {
    func universalOptions() -> Options {
        var o = tinyOptions()
        o.compaction.style = .universal
        return o
    }

    /// Waits (up to 20 s) until no compaction runs and none is due.
    func waitForQuiet(_ db: SliceDB) {
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            let idle = db.engine.lock.withLock {
                db.engine.runningCompactions.isEmpty
                    && db.engine.pickUniversalCompaction(db.engine.versions.current) == nil
            }
            if idle { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    /// Levels 1 and deeper hold files in key order that do not overlap.
    func expectLevelsSorted(_ db: SliceDB) {
        let v = db.engine.lock.withLock { db.engine.versions.current }
        for level in v.levels.dropFirst() {
            for (a, b) in zip(level, level.dropFirst()) {
                #expect(compareSlices(a.largestUserKey, b.smallestUserKey) < 0)
            }
        }
    }

    /// Random puts, overwrites and deletes under universal compaction: the store always holds
    /// the model (a snapshot the model as it was), the tree stays a short stack of sorted runs,
    /// and compactions of each kind ran.
    @Test func holdsTheModelAndFewRuns() throws {
        let dir = TempDir()
        var model: [[UInt8]: [UInt8]] = [:]
        var rng = SeededRandom(seed: 9)
        let db = try SliceDB(path: dir.path, options: universalOptions())
        var snapshot: Snapshot?
        var atSnapshot: [[UInt8]: [UInt8]] = [:]
        for round in 0..<12 {
            for _ in 0..<1500 {
                let k = bytes(String(format: "k%05d", Int.random(in: 0..<5000, using: &rng)))
                if Int.random(in: 0..<10, using: &rng) == 0 {
                    try db.delete(k)
                    model[k] = nil
                } else {
                    let v =
                        bytes("r\(round)-")
                        + Array(repeating: UInt8(ascii: "u"), count: Int.random(in: 10...120, using: &rng))
                    try db.put(k, v)
                    model[k] = v
                }
            }
            if round == 5 {
                snapshot = try db.snapshot()
                atSnapshot = model
            }
        }
        waitForQuiet(db)
        let s = db.stats()
        let runs = s.levels[0].files + s.levels.dropFirst().filter { $0.files > 0 }.count
        #expect(runs <= tinyOptions().l0CompactionTrigger + 1, "\(s.levels.map(\.files))")
        #expect(s.universalSizeRatioCompactions + s.universalRunCountCompactions > 0)
        #expect(s.universalSpaceAmplificationCompactions > 0)
        #expect(s.compactionStyle == .universal)
        expectLevelsSorted(db)
        let all = try allEntries(db)
        #expect(all.count == model.count)
        for kv in all { #expect(model[kv.key] == kv.value) }
        let old = try allEntries(db, snapshot: snapshot)
        #expect(old.count == atSnapshot.count)
        for kv in old { #expect(atSnapshot[kv.key] == kv.value) }
        snapshot = nil
        _ = try db.check()
        try db.close()
        let again = try SliceDB(path: dir.path, options: universalOptions())
        #expect(try allEntries(again) == all)
        try again.close()
    }

    /// A store switches style at an open, either way, and keeps every key.
    @Test func switchesStyleOnAnExistingStore() throws {
        let dir = TempDir()
        var model: [[UInt8]: [UInt8]] = [:]
        func write(_ db: SliceDB, _ tag: String, _ n: Int) throws {
            for i in 0..<n {
                let k = bytes(String(format: "s%05d", (i * 7919) % 6000))
                let v = bytes("\(tag)-\(i)") + Array(repeating: UInt8(ascii: "w"), count: 60)
                try db.put(k, v)
                model[k] = v
            }
        }
        for (style, tag) in [(CompactionStyle.leveled, "a"), (.universal, "b"), (.leveled, "c"), (.universal, "d")] {
            var o = tinyOptions()
            o.compaction.style = style
            let db = try SliceDB(path: dir.path, options: o)
            #expect(try allEntries(db).count == model.count)
            try write(db, tag, 6000)
            if style == .universal {
                waitForQuiet(db)
                let s = db.stats()
                #expect(
                    s.universalSizeRatioCompactions + s.universalRunCountCompactions
                        + s.universalSpaceAmplificationCompactions > 0)
            }
            expectLevelsSorted(db)
            let all = try allEntries(db)
            #expect(all.count == model.count)
            for kv in all { #expect(model[kv.key] == kv.value, "\(style)") }
            try db.close()
        }
    }
}
