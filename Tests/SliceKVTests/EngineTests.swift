import Foundation
import Testing

@testable import SliceKV

@Suite struct EngineTests {
    @Test func manifestReplayRestoresLevels() throws {
        let dir = TempDir()
        var levelsBefore: [[UInt64]] = []
        do {
            let db = try SliceDB(path: dir.path, options: tinyOptions())
            for i in 0..<3000 { try db.put("key\(i % 1000)", "value-\(i)") }
            try db.flush()
            try db.close()
            levelsBefore = db.engine.versions.current.levels.map { $0.map(\.number) }
        }
        #expect(levelsBefore.flatMap { $0 }.count > 1)
        // Replaying the manifest alone gives the same files per level.
        let counters = EngineCounters()
        let cache = TableCache(
            directory: dir.path, capacity: 10, blockCache: BlockCache(capacityBytes: 0), counters: counters,
            mmapReads: false, layer: PosixFileLayer.shared)
        let readers = BlobReaderCache(directory: dir.path, capacity: 4, layer: PosixFileLayer.shared)
        let deleter = FileDeleter(directory: dir.path, tableCache: cache, blobReaders: readers, counters: counters)
        let vs = VersionSet(
            directory: dir.path, options: tinyOptions(), deleter: deleter,
            blobStore: BlobStore(
                directory: dir.path, options: tinyOptions(), readers: readers, deleter: deleter, counters: counters))
        #expect(try vs.recover())
        #expect(vs.current.levels.map { $0.map(\.number) } == levelsBefore)
        #expect(vs.lastSequence >= 3000)
        // And the store reopens with every value.
        let db = try SliceDB(path: dir.path, options: tinyOptions())
        for i in 0..<1000 { #expect(try db.get("key\(i)") == bytes("value-\(2000 + i)")) }
    }

    /// `containsKey(withPrefix:)` answers as a scan would, for directory-like prefixes and
    /// others, with keys spread over memtables and tables, deleted keys and a snapshot; the
    /// directory-prefix filter lets it skip tables.
    @Test func containsKeyWithPrefixMatchesAScan() throws {
        let dir = TempDir()
        var o = tinyOptions()
        o.l0CompactionTrigger = 100  // keep many overlapping L0 tables
        o.l0SlowdownTrigger = 100
        o.l0StopTrigger = 100
        let db = try SliceDB(path: dir.path, options: o)
        var rng = SystemRandomNumberGenerator()
        var live = Set<[UInt8]>()
        var snapshot: Snapshot?
        var atSnapshot = Set<[UInt8]>()
        for round in 0..<6 {
            for _ in 0..<300 {
                let depth = Int.random(in: 1...4, using: &rng)
                let key = (0..<depth).map { _ in "d\(Int.random(in: 0..<5, using: &rng))" }.joined(separator: "/")
                let k = bytes(key)
                if Bool.random(using: &rng) || live.isEmpty {
                    try db.put(k, bytes("v"))
                    live.insert(k)
                } else {
                    try db.delete(k)
                    live.remove(k)
                }
            }
            if round % 2 == 0 { try db.flush() }
            if round == 3 {
                snapshot = try db.snapshot()
                atSnapshot = live
            }
        }
        #expect(db.stats().levels[0].files >= 3)
        let before = db.stats().bloomUsefulNegatives
        func expected(_ keys: Set<[UInt8]>, _ prefix: [UInt8]) -> Bool { keys.contains { $0.starts(with: prefix) } }
        var prefixes: [[UInt8]] = [[], bytes("d"), bytes("d9/"), bytes("d1/d2"), bytes("x")]
        for a in 0..<5 {
            prefixes.append(bytes("d\(a)/"))
            for b in 0..<5 {
                prefixes.append(bytes("d\(a)/d\(b)/"))
                for c in 0..<5 { prefixes.append(bytes("d\(a)/d\(b)/d\(c)/")) }
            }
        }
        for p in prefixes {
            #expect(
                try db.containsKey(withPrefix: p) == expected(live, p), "prefix \(String(decoding: p, as: UTF8.self))")
            #expect(
                try db.containsKey(withPrefix: p, snapshot: snapshot) == expected(atSnapshot, p),
                "prefix \(String(decoding: p, as: UTF8.self)) at the snapshot")
        }
        #expect(db.stats().bloomUsefulNegatives > before, "directory-prefix filters skipped tables")
        snapshot = nil
        try db.close()
    }

    @Test func secondOpenIsRefused() throws {
        let dir = TempDir()
        let db = try SliceDB(path: dir.path)
        do {
            _ = try SliceDB(path: dir.path)
            Issue.record("second open succeeded")
        } catch let e as SliceError {
            #expect(e.code == .locked)
        }
        try db.close()
        // After close the directory can be opened again.
        _ = try SliceDB(path: dir.path)
    }

    @Test func limitsAreEnforcedWithTypedErrors() throws {
        let dir = TempDir()
        var o = Options()
        o.maxValueSize = 1 << 20
        let db = try SliceDB(path: dir.path, options: o)
        #expect(throws: SliceError(.invalidArgument, "empty key")) { try db.put([UInt8](), bytes("x")) }
        #expect { try db.put([UInt8](repeating: 1, count: 65537), bytes("x")) } throws: {
            ($0 as? SliceError)?.code == .invalidArgument
        }
        #expect { try db.put(bytes("k"), [UInt8](repeating: 1, count: (1 << 20) + 1)) } throws: {
            ($0 as? SliceError)?.code == .invalidArgument
        }
        // The largest allowed key and value work, and nothing of a rejected batch is applied.
        let bigKey = [UInt8](repeating: 7, count: 65536)
        try db.put(bigKey, [UInt8](repeating: 3, count: 1 << 20))
        #expect(try db.get(bigKey)?.count == 1 << 20)
        var batch = WriteBatch()
        batch.put("ok", "1")
        batch.put(bytes("big"), [UInt8](repeating: 0, count: 2 << 20))
        #expect(throws: SliceError.self) { try db.write(batch) }
        #expect(try db.get("ok") == nil)
        var bad = Options()
        bad.blockSize = 1
        #expect { try SliceDB(path: dir.path + "/other", options: bad) } throws: {
            ($0 as? SliceError)?.code == .invalidArgument
        }
    }

    @Test func valuesAreUnlimitedUnlessALimitIsSet() throws {
        let dir = TempDir()
        let db = try SliceDB(path: dir.path)
        let value = [UInt8](repeating: 0xab, count: (64 << 20) + 1)
        try db.put(bytes("huge"), value)
        try db.flush()
        let same = try db.get("huge") == value
        #expect(same)
        try db.close()
        var o = Options()
        o.maxValueSize = 1 << 20
        let limited = try SliceDB(path: dir.path, options: o)
        #expect { try limited.put(bytes("big"), [UInt8](repeating: 1, count: (1 << 20) + 1)) } throws: {
            ($0 as? SliceError)?.code == .invalidArgument
        }
        let w = try limited.valueWriter(for: bytes("stream"))
        #expect { try w.write([UInt8](repeating: 1, count: (1 << 20) + 1)) } throws: {
            ($0 as? SliceError)?.code == .invalidArgument
        }
        #expect(try limited.get(bytes("stream")) == nil)
    }

    @Test func snapshotsAndScansSeeAFixedView() throws {
        let dir = TempDir()
        let db = try SliceDB(path: dir.path, options: tinyOptions())
        for i in 0..<500 { try db.put("k\(1000 + i)", "old") }
        let snap = try db.snapshot()
        let cursor = try db.scan()
        for i in 0..<500 { try db.put("k\(1000 + i)", "new") }
        for i in 0..<250 { try db.delete("k\(1000 + i)") }
        try db.put("k9999", "added")
        try db.compact()
        // Compaction keeps what the snapshot sees.
        let viaSnapshot = try allEntries(db, snapshot: snap)
        #expect(viaSnapshot.count == 500)
        #expect(viaSnapshot.allSatisfy { $0.value == bytes("old") })
        #expect(try db.get("k1000", snapshot: snap) == bytes("old"))
        var n = 0
        while let kv = try cursor.next() {
            #expect(kv.value == bytes("old"))
            n += 1
        }
        #expect(n == 500)
        let now = try allEntries(db)
        #expect(now.count == 251)
        #expect(now.last?.value == bytes("added"))
    }

    @Test func rangeAndPrefixScans() throws {
        let dir = TempDir()
        let db = try SliceDB(path: dir.path, options: tinyOptions())
        for p in ["a", "b", "b\u{7f}", "c"] { for i in 0..<50 { try db.put("\(p)/\(i)", "\(p)\(i)") } }
        try db.put(bytes("b"), bytes("exact"))
        try db.put([0x62, 0xff], bytes("b-ff"))
        try db.flush()
        let b = try allEntries(db, .prefix(bytes("b/")))
        #expect(b.count == 50)
        #expect(b.allSatisfy { $0.key.starts(with: bytes("b/")) })
        let range = try allEntries(db, KeyRange(start: bytes("a/10"), end: bytes("a/20")))
        #expect(range.map(\.keyString) == (0..<50).map { "a/\($0)" }.filter { $0 >= "a/10" && $0 < "a/20" }.sorted())
        #expect(try allEntries(db, .prefix([0x62, 0xff])).map(\.value) == [bytes("b-ff")])
        #expect(try allEntries(db, .prefix([0xff])).isEmpty)
        #expect(try allEntries(db, KeyRange(start: bytes("c/"))).count == 50)
    }

    /// What a crash leaves: a copy of the directory of an open store (its WAL not finished; a
    /// mapped one still ends in preallocated zeros) opens with every write, both WAL modes.
    @Test(arguments: [true, false]) func storeCopiedWhileOpenRecoversEveryWrite(mmapWrites: Bool) throws {
        let dir = TempDir()
        let copy = TempDir()
        var options = Options()
        options.mmapWrites = mmapWrites
        let db = try SliceDB(path: dir.path, options: options)
        for i in 0..<3000 { try db.put("key\(i)", [UInt8](repeating: UInt8(i & 0xff), count: 2000)) }
        try db.delete("key7")
        try db.sync()
        try FileManager.default.removeItem(atPath: copy.path)
        try FileManager.default.copyItem(atPath: dir.path, toPath: copy.path)
        try db.close()
        let reopened = try SliceDB(path: copy.path, options: options)
        #expect(reopened.recoveryNotes.isEmpty)
        for i in 0..<3000 where i != 7 {
            #expect(try reopened.get("key\(i)") == [UInt8](repeating: UInt8(i & 0xff), count: 2000))
        }
        #expect(try reopened.get("key7") == nil)
    }

    @Test func writeBatchIsAtomicAcrossReopen() throws {
        let dir = TempDir()
        do {
            let db = try SliceDB(path: dir.path)
            var batch = WriteBatch()
            for i in 0..<100 { batch.put("batch\(i)", "v\(i)") }
            batch.delete("batch5")
            try db.write(batch, sync: true)
        }
        let db = try SliceDB(path: dir.path)
        #expect(try allEntries(db).count == 99)
        #expect(try db.get("batch5") == nil)
        #expect(try db.get("batch99") == bytes("v99"))
    }

    @Test func statisticsCountWhatHappened() throws {
        let dir = TempDir()
        let db = try SliceDB(path: dir.path, options: tinyOptions())
        for i in 0..<2000 { try db.put("key\(i)", String(repeating: "v", count: 50)) }
        for i in 0..<100 { try db.delete("key\(i)") }
        for i in 0..<500 { _ = try db.get("key\(i)") }
        for i in 0..<200 { _ = try db.get("missing\(i)") }
        try db.compact()
        db.clearCache()
        for i in 0..<300 { _ = try db.get("key\(i)") }
        let s = db.stats()
        #expect(s.puts == 2000)
        #expect(s.deletes == 100)
        #expect(s.gets == 1000)
        #expect(s.getHits == 400 + 300 - 100)
        #expect(s.flushes > 0)
        #expect(s.compactions > 0)
        #expect(s.compactionBytesWritten > 0)
        #expect(s.writeAmplification > 1)
        #expect(s.blockCacheMisses > 0)
        #expect(s.bloomChecks > 0)
        #expect(s.getLatency.count == 1000 - UInt64(s.gets - s.getLatency.count))
        #expect(s.putLatency.count == 2100)
        #expect(s.putLatency.p50 > 0)
        #expect(s.levels.reduce(0) { $0 + $1.files } > 0)
        let prom = s.prometheusText
        #expect(prom.contains("# TYPE slice_puts_total counter"))
        #expect(prom.contains("slice_puts_total 2000"))
        #expect(prom.contains("slice_level_files{level=\"0\"}"))
        #expect(prom.contains("slice_get_latency_microseconds{quantile=\"0.99\"}"))
        let json = try JSONSerialization.jsonObject(with: Data(s.jsonText.utf8)) as? [String: Any]
        #expect(json?["puts"] as? Int == 2000)
    }

    @Test func compactionConfigRunsParallelMergesAndConcurrentJobs() throws {
        let dir = TempDir()
        var o = tinyOptions()
        o.compaction = CompactionConfig(
            maxConcurrentCompactions: 3, mergeParallelism: 4, maxSSTablesPerJob: 3, enableParallelMerge: true)
        let db = try SliceDB(path: dir.path, options: o)
        var rng = SeededRandom(seed: 3)
        var model: [String: String] = [:]
        for i in 0..<20000 {
            let k = "key\(Int.random(in: 0..<5000, using: &rng))"
            try db.put(k, "value\(i)")
            model[k] = "value\(i)"
        }
        try db.compact()
        let s = db.stats()
        #expect(s.subcompactions > 0)
        #expect(s.levels[0].files == 0)
        // Deepest-level files do not overlap and hold everything.
        let v = db.engine.versions.current
        for level in 1..<v.levels.count {
            let files = v.levels[level]
            for (a, b) in zip(files, files.dropFirst()) {
                #expect(compareSlices(a.largestUserKey, b.smallestUserKey) < 0)
            }
        }
        let all = try allEntries(db)
        #expect(all.map(\.keyString) == model.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
        #expect(all.allSatisfy { model[$0.keyString] == $0.valueString })

        var serial = tinyOptions()
        serial.compaction = CompactionConfig(
            maxConcurrentCompactions: 1, mergeParallelism: 1, maxSSTablesPerJob: 2, enableParallelMerge: false)
        let dir2 = TempDir()
        let db2 = try SliceDB(path: dir2.path, options: serial)
        for i in 0..<5000 { try db2.put("key\(i % 1000)", "value\(i)") }
        try db2.compact()
        #expect(db2.stats().subcompactions == 0)
        #expect(try allEntries(db2).count == 1000)
    }

    @Test func obsoleteFilesAreDeletedAndSpaceReturns() throws {
        let dir = TempDir()
        let db = try SliceDB(path: dir.path, options: tinyOptions())
        for round in 0..<5 {
            for i in 0..<1000 { try db.put("key\(i)", "round\(round)-" + String(repeating: "x", count: 100)) }
        }
        try db.compact()
        let live = Set(db.engine.versions.current.levels.flatMap { $0.map(\.number) })
        let onDisk = files(in: dir.path, suffix: ".sst")
        #expect(onDisk.count == live.count)
        for i in 0..<1000 { try db.delete("key\(i)") }
        try db.compact()
        #expect(try allEntries(db).isEmpty)
        #expect(db.stats().totalTableBytes == 0)
        // A file goes when the last version holding it is released; a background compaction
        // thread (at lower CPU priority) may still hold one for a moment.
        var remaining = files(in: dir.path, suffix: ".sst")
        for _ in 0..<100 where !remaining.isEmpty {
            usleep(100_000)
            remaining = files(in: dir.path, suffix: ".sst")
        }
        #expect(remaining.isEmpty)
    }

    @Test func asyncAPIAsDocumented() async throws {
        let dir = TempDir()
        let db = try await LSMTree(path: dir.path)
        let db2dir = TempDir()
        let small = try await LSMTree(path: db2dir.path, cacheSize: 5000)
        #expect(small.db.options.blockCacheBytes == 5000 * 4096)
        let dir3 = TempDir()
        let tuned = try await LSMTree(
            path: dir3.path, cacheSize: 1000,
            compaction: CompactionConfig(
                maxConcurrentCompactions: 4, mergeParallelism: 8, maxSSTablesPerJob: 5, enableParallelMerge: true))
        #expect(tuned.db.options.compaction.maxConcurrentCompactions == 4)
        try await db.put("user:1", "Alice")
        try await db.put("user:2", "Bob")
        if let v = try await db.get("user:1") {
            #expect(String(decoding: v, as: UTF8.self) == "Alice")
        } else {
            Issue.record("missing")
        }
        try await db.delete("user:2")
        #expect(try await db.get("user:2") == nil)
        try await db.flush()
        try await db.compact()
        #expect(try await db.get("user:1") == bytes("Alice"))
        var names: [String] = []
        for try await kv in db.scan(prefix: "user:") { names.append(kv.keyString) }
        #expect(names == ["user:1"])
        let stats = db.stats()
        #expect(stats.puts == 2)
        db.clearCache()
        try await db.sync()
        try await db.close()
        await #expect(throws: SliceError.self) { try await db.put("x", "y") }
    }
}
