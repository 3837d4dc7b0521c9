import Foundation
import Testing

@testable import SliceKV

@Suite struct ConcurrencyTests {
    /// 10 tasks x 1,000 keys through the async API, with readers and scans running while small
    /// memtables force flushes and compactions; everything is verified afterwards.
    @Test func writersReadersAndScansDuringBackgroundWork() async throws {
        let dir = TempDir("slice-conc")
        var options = tinyOptions()
        options.compaction.maxConcurrentCompactions = 2
        let db = try await LSMTree(path: dir.path, options: options)
        let writersDone = ManagedCounter()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in 0..<10 {
                group.addTask {
                    for i in 0..<1000 {
                        try await db.put("w\(w)-\(String(format: "%04d", i))", "value-\(w)-\(i)")
                    }
                    writersDone.increment()
                }
            }
            // Readers: a key once written must stay readable with its value.
            for r in 0..<3 {
                group.addTask {
                    var rng = SeededRandom(seed: UInt64(r))
                    while writersDone.value < 10 {
                        let w = Int.random(in: 0..<10, using: &rng)
                        let i = Int.random(in: 0..<1000, using: &rng)
                        if let v = try await db.get("w\(w)-\(String(format: "%04d", i))") {
                            #expect(v == bytes("value-\(w)-\(i)"))
                        }
                        await Task.yield()
                    }
                }
            }
            // Scans: always sorted, never a wrong value.
            group.addTask {
                while writersDone.value < 10 {
                    var previous: [UInt8]?
                    for try await kv in db.scan(prefix: "w3-") {
                        if let p = previous { #expect(p.lexicographicallyPrecedes(kv.key)) }
                        previous = kv.key
                        let i = Int(kv.keyString.dropFirst(3))!
                        #expect(kv.value == bytes("value-3-\(i)"))
                    }
                }
            }
            try await group.waitForAll()
        }
        let stats = db.stats()
        #expect(stats.flushes > 0)
        #expect(stats.compactions > 0)
        #expect(stats.groupCommits <= stats.writeBatches)
        for w in 0..<10 {
            var n = 0
            for try await kv in db.scan(prefix: "w\(w)-") {
                #expect(kv.valueString == "value-\(w)-\(Int(kv.keyString.split(separator: "-")[1])!)")
                n += 1
            }
            #expect(n == 1000)
        }
        try await db.close()
        // And after reopening.
        let again = try SliceDB(path: dir.path, options: options)
        #expect(try allEntries(again).count == 10_000)
    }

    /// Threads (as FUSE workers would) hammering the synchronous core with sync writes: group
    /// commit must merge them.
    /// The async API's fast paths: an uncontended small write is applied where it is called
    /// (counted in `inlineWrites`), anything else goes through the I/O threads with the same
    /// outcome; a get is answered without I/O only from memtables and cached blocks.
    @Test func asyncFastPathsAnswerLikeTheSlowOnes() async throws {
        let dir = TempDir("slice-async")
        let db = try await LSMTree(path: dir.path, options: tinyOptions())
        for i in 0..<200 { try await db.put("k\(String(format: "%03d", i))", "v\(i)") }
        #expect(db.stats().inlineWrites > 0)
        // A large value, a synced write and a batch with a blob reference take the slow path.
        let large = [UInt8](repeating: 7, count: db.db.options.blobThreshold + 1)
        try await db.put(Array("big".utf8), large)
        try await db.write(WriteBatch(), sync: true)
        #expect(try await db.get("big") == large)
        try await db.delete(Array("k000".utf8))
        #expect(try await db.get("k000") == nil)
        // Flushed and evicted from the block cache: the I/O-free get declines, the get reads.
        try await db.flush()
        db.clearCache()
        #expect(try db.db.engine.getWithoutIO(Array("k150".utf8)) == nil)
        #expect(try await db.get("k150") == Array("v150".utf8))
        // Now its block is cached: answered without I/O, and a miss in that block too.
        #expect(try db.db.engine.getWithoutIO(Array("k150".utf8)) == .some(Array("v150".utf8)))
        #expect(try db.db.engine.getWithoutIO(Array("k150x".utf8)) == .some(nil))
        // A key too long for the store is refused by the slow path with its error.
        await #expect(throws: SliceError.self) {
            try await db.put([UInt8](repeating: 1, count: Options.maxKeySize + 1), [1])
        }
        try await db.close()
    }

    @Test func groupCommitSharesSyncs() throws {
        let dir = TempDir("slice-gc")
        var options = Options()
        options.syncPolicy = .always
        let db = try SliceDB(path: dir.path, options: options)
        // Real threads: concurrentPerform would use only as many threads as cores.
        let group = DispatchGroup()
        for t in 0..<8 {
            group.enter()
            Thread {
                for i in 0..<200 { try! db.put("t\(t)-\(i)", "v") }
                group.leave()
            }.start()
        }
        group.wait()
        let s = db.stats()
        #expect(s.writeBatches == 1600)
        #expect(s.walSyncs == s.groupCommits)
        #expect(s.groupCommits < 1600)
        #expect(try allEntries(db).count == 1600)
    }
}

final class ManagedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func increment() { lock.withLock { n += 1 } }
    var value: Int { lock.withLock { n } }
}
