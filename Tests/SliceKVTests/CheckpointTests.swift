import Foundation
import Synchronization
import Testing

@testable import SliceKV

/// `SliceDB.checkpoint(to:)`: a consistent copy at one instant while writes continue.
@Suite struct CheckpointTests {
    static func key(_ i: Int) -> [UInt8] { Array(String(format: "k%06d", i).utf8) }
    /// Every seventh value is large enough for a blob file.
    static func value(_ i: Int, blobThreshold: Int) -> [UInt8] {
        let n = i % 7 == 0 ? blobThreshold + 100 + i % 50 : 20 + i % 30
        return (0..<n).map { UInt8(truncatingIfNeeded: i &* 31 &+ $0) }
    }

    /// A writer puts keys in order (one put at a time, each acknowledged before the next) while
    /// the checkpoint is taken; small memtables keep flushes, compactions and blob files busy.
    /// The checkpoint holds exactly the first m keys, with every acknowledged-before key in it,
    /// nothing torn; the store's later compactions do not touch it; it opens and takes writes
    /// of its own.
    @Test func holdsAPrefixOfTheWritesWhileTheyContinue() throws {
        let dir = TempDir("slice-ckpt")
        var options = tinyOptions()
        options.blobThreshold = 2048
        options.blobFileSize = 64 << 10
        let db = try SliceDB(path: dir.file("db"), options: options)
        let acknowledged = Atomic<Int>(0)
        let stop = Atomic<Bool>(false)
        let total = 6000
        let writer = Thread {
            for i in 0..<total where !stop.load(ordering: .relaxed) {
                try! db.put(CheckpointTests.key(i), CheckpointTests.value(i, blobThreshold: 2048))
                acknowledged.store(i + 1, ordering: .releasing)
            }
        }
        writer.start()
        while acknowledged.load(ordering: .acquiring) < 1500 { usleep(1000) }
        let before = acknowledged.load(ordering: .acquiring)
        try db.checkpoint(to: dir.file("ckpt"))
        let after = acknowledged.load(ordering: .acquiring)
        #expect(throws: SliceError.self) { try db.checkpoint(to: dir.file("ckpt")) }
        while acknowledged.load(ordering: .acquiring) < total { usleep(1000) }
        stop.store(true, ordering: .relaxed)
        // The store moves on: compaction deletes the files the checkpoint linked.
        try db.compact()
        try db.close()

        let copy = try SliceDB(path: dir.file("ckpt"), options: options)
        var m = 0
        try copy.scan(.all).forEach { k, v in
            #expect(Array(k) == CheckpointTests.key(m), "key \(m) is missing or out of order")
            #expect(Array(v) == CheckpointTests.value(m, blobThreshold: 2048), "value of key \(m)")
            m += 1
            return true
        }
        #expect(m >= before, "\(m) keys, but \(before) were acknowledged before the checkpoint")
        #expect(m <= after + 1, "\(m) keys, but only \(after) were acknowledged when it returned")
        #expect(try copy.check().tables > 0, "every table and blob value of the copy reads back with good checksums")
        // A store of its own: writes to it stay there.
        try copy.put(Array("only-in-copy".utf8), [1])
        try copy.close()
        let original = try SliceDB(path: dir.file("db"), options: options)
        #expect(try original.get(Array("only-in-copy".utf8)) == nil)
        #expect(try original.get(CheckpointTests.key(total - 1)) != nil)
        try original.close()
    }
}
