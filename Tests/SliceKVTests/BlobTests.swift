import Foundation
import Testing

@testable import SliceKV

#if canImport(Glibc)
    import Glibc
#endif

/// Large values: key-value separation into blob files, streaming puts, ranged reads, space
/// reclamation, corruption detection and crash safety.
@Suite struct BlobTests {
    /// Bytes that differ per key and offset, so a misplaced chunk cannot compare equal.
    static func pattern(_ seed: Int, _ count: Int) -> [UInt8] {
        var x = UInt64(truncatingIfNeeded: seed) &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<count).map { _ in
            x ^= x << 13
            x ^= x >> 7
            x ^= x << 17
            return UInt8(truncatingIfNeeded: x)
        }
    }

    /// Compares without printing megabytes of bytes on failure.
    static func same(_ a: [UInt8]?, _ b: [UInt8]?) -> Bool { a == b }

    static func blobBytesOnDisk(_ dir: String) -> Int {
        files(in: dir, suffix: ".blob").reduce(0) { $0 + fileSize($1) }
    }

    @Test func largeValuesRoundTripThroughBlobFiles() throws {
        let dir = TempDir("slice-blob")
        var o = Options()
        o.blobThreshold = 4096
        var values: [[UInt8]: [UInt8]] = [:]
        for (i, size) in [0, 10, 4095, 4096, 65_535, 65_536, 65_537, 200_000, 3 << 20].enumerated() {
            values[bytes("k\(i)")] = BlobTests.pattern(i, size)
        }
        do {
            let db = try SliceDB(path: dir.path, options: o)
            for (k, v) in values { try db.put(k, v) }
            for (k, v) in values {
                #expect(BlobTests.same(try db.get(k), v), "\(k)")
                #expect(try db.valueSize(k) == UInt64(v.count))
            }
            #expect(db.stats().blobValuesWritten == 6)
            try db.flush()
            #expect(
                try allEntries(db)
                    == values.keys.sorted { $0.lexicographicallyPrecedes($1) }.map {
                        KeyValue(key: $0, value: values[$0]!)
                    })
            try db.close()
        }
        let db = try SliceDB(path: dir.path, options: o)
        var rng = SeededRandom(seed: 7)
        for (k, v) in values {
            #expect(BlobTests.same(try db.get(k), v), "\(k)")
            #expect(try db.valueSize(k) == UInt64(v.count))
            for _ in 0..<20 where !v.isEmpty {
                let at = Int.random(in: 0..<v.count, using: &rng)
                let n = Int.random(in: 0...min(v.count - at + 5, 300_000), using: &rng)
                #expect(
                    BlobTests.same(try db.read(k, offset: UInt64(at), count: n), Array(v[at..<min(v.count, at + n)])))
            }
            #expect(try db.read(k, offset: UInt64(v.count) + 1, count: 10) == [])
        }
        #expect(try db.valueSize(bytes("absent")) == nil)
        #expect(try db.read(bytes("absent"), offset: 0, count: 10) == nil)
        let report = try db.check()
        #expect(report.blobValues == 6)
    }

    @Test func streamingPutIsInvisibleUntilCommitAndAbortLeavesNothing() throws {
        let dir = TempDir("slice-blob")
        let db = try SliceDB(path: dir.path)
        let key = bytes("stream")
        let value = BlobTests.pattern(1, 10 << 20)
        let w = try db.valueWriter(for: key)
        var at = 0
        var step = 1
        while at < value.count {
            // Odd chunk sizes cross the 64 KiB chunk boundaries at every offset.
            let n = min(value.count - at, 7_919 * step % 300_007 + 1)
            try value[at..<(at + n)].withUnsafeBytes { try w.write($0) }
            at += n
            step += 1
            if step == 50 { #expect(try db.get(key) == nil) }
        }
        #expect(try db.get(key) == nil)
        try w.commit()
        #expect(BlobTests.same(try db.get(key), value))
        #expect(throws: SliceError.self) { try w.write([1]) }

        let sizeBefore = BlobTests.blobBytesOnDisk(dir.path)
        let aborted = try db.valueWriter(for: bytes("aborted"))
        for i in 0..<40 { try aborted.write(BlobTests.pattern(i, 100_000)) }
        aborted.abort()
        #expect(try db.get(bytes("aborted")) == nil)
        #expect(BlobTests.blobBytesOnDisk(dir.path) == sizeBefore, "an aborted stream is cut off its blob file")

        // A stream that stays small is stored inline.
        let small = try db.valueWriter(for: bytes("small"))
        try small.write(bytes("tiny"))
        try small.commit()
        #expect(try db.get(bytes("small")) == bytes("tiny"))
        #expect(db.stats().blobValuesWritten == 1)

        // Streaming from a file descriptor.
        let src = dir.file("source")
        _ = FileManager.default.createFile(atPath: src, contents: Data(BlobTests.pattern(9, 1_500_000)))
        let fd = open(src, O_RDONLY)
        defer { close(fd) }
        #expect(try db.put(bytes("fromfd"), contentsOf: fd) == 1_500_000)
        #expect(BlobTests.same(try db.get(bytes("fromfd")), BlobTests.pattern(9, 1_500_000)))
    }

    @Test func stagedValuesAreInvisibleUntilTheirBatchAndAbortLeavesNothing() throws {
        let dir = TempDir("slice-blob")
        var options = Options()
        options.blobThreshold = 4096
        let db = try SliceDB(path: dir.path, options: options)
        let w = db.stagedValueWriter()
        var batch = WriteBatch()
        for i in 0..<40 {
            let v = BlobTests.pattern(i, 65_536)
            let staged = try v.withUnsafeBytes { try w.stage($0) }
            #expect(staged.count == 65_536)
            batch.put(bytes("chunk\(i)"), staged, keyspace: Keyspace(rawValue: 5))
        }
        #expect(w.stagedBytes == 40 * 65_536)
        #expect(try db.get(bytes("chunk0"), keyspace: Keyspace(rawValue: 5)) == nil)
        // Only the writer that staged them can publish them.
        #expect(throws: SliceError.self) { try db.write(batch) }
        // The same batch also carries an ordinary large value and a small one.
        batch.put(bytes("large"), BlobTests.pattern(99, 100_000))
        batch.put(bytes("small"), bytes("tiny"))
        try w.commit(batch)
        #expect(w.stagedBytes == 0)
        for i in 0..<40 {
            #expect(
                BlobTests.same(
                    try db.get(bytes("chunk\(i)"), keyspace: Keyspace(rawValue: 5)), BlobTests.pattern(i, 65_536)))
        }
        #expect(BlobTests.same(try db.get(bytes("large")), BlobTests.pattern(99, 100_000)))
        #expect(try db.get(bytes("small")) == bytes("tiny"))
        #expect(db.stats().blobValuesWritten == 41)

        // Staged and then abandoned: nothing visible, the blob file cut back.
        let sizeBefore = BlobTests.blobBytesOnDisk(dir.path)
        var dropped = WriteBatch()
        for i in 0..<30 {
            let staged = try BlobTests.pattern(i, 65_536).withUnsafeBytes { try w.stage($0) }
            dropped.put(bytes("gone\(i)"), staged)
        }
        w.abort()
        #expect(throws: SliceError.self) { try w.commit(dropped) }
        #expect(try db.get(bytes("gone0")) == nil)
        #expect(
            BlobTests.blobBytesOnDisk(dir.path) == sizeBefore, "abandoned staged values are cut off their blob file")
        // A value below the threshold cannot be staged.
        #expect(throws: SliceError.self) { try bytes("tiny").withUnsafeBytes { try w.stage($0) } }
        // The writer stages again after a commit, and everything survives a reopen.
        let again = try BlobTests.pattern(7, 70_000).withUnsafeBytes { try w.stage($0) }
        var last = WriteBatch()
        last.put(bytes("again"), again)
        try w.commit(last, sync: true)
        try db.close()
        let reopened = try SliceDB(path: dir.path, options: options)
        #expect(BlobTests.same(try reopened.get(bytes("again")), BlobTests.pattern(7, 70_000)))
        #expect(
            BlobTests.same(
                try reopened.get(bytes("chunk39"), keyspace: Keyspace(rawValue: 5)), BlobTests.pattern(39, 65_536)))
        _ = try reopened.check()  // throws on damage
    }

    @Test func asyncStreamingPut() async throws {
        let dir = TempDir("slice-blob")
        let tree = try await LSMTree(path: dir.path)
        let chunks = AsyncStream<[UInt8]> { c in
            for i in 0..<32 { c.yield(BlobTests.pattern(i, 64_000)) }
            c.finish()
        }
        try await tree.put(bytes("async"), chunks: chunks)
        let expected = (0..<32).flatMap { BlobTests.pattern($0, 64_000) }
        #expect(BlobTests.same(try await tree.get(bytes("async")), expected))
        #expect(try await tree.valueSize(bytes("async")) == UInt64(expected.count))
        #expect(try await tree.read(bytes("async"), offset: 100_000, count: 10) == Array(expected[100_000..<100_010]))
        try await tree.close()
    }

    /// The scenario: 1 GiB of large values, all overwritten, compacted: disk usage
    /// returns to about 1 GiB because whole blob files of garbage are deleted.
    @Test func overwrittenAndDeletedValuesFreeTheirSpace() throws {
        let dir = TempDir("slice-blob")
        var o = Options()
        o.blobFileSize = 64 << 20
        let db = try SliceDB(path: dir.path, options: o)
        let count = 256
        let size = 4 << 20
        let template = BlobTests.pattern(3, size)
        func value(_ i: Int, _ round: UInt8) -> [UInt8] {
            var v = template
            v[0] = round
            v[1] = UInt8(i & 0xff)
            v[2] = UInt8(i >> 8)
            return v
        }
        for i in 0..<count { try db.put(bytes("big\(i)"), value(i, 1)) }
        let snapshot = try db.snapshot()
        for i in 0..<count { try db.put(bytes("big\(i)"), value(i, 2)) }
        try db.compact()
        // The snapshot still sees the old values, so their files stay.
        #expect(BlobTests.same(try db.get(bytes("big7"), snapshot: snapshot), value(7, 1)))
        #expect(BlobTests.blobBytesOnDisk(dir.path) > 2 * count * size - (64 << 20))
        _ = consume snapshot
        try db.compact()
        let onDisk = BlobTests.blobBytesOnDisk(dir.path)
        let gib = count * size
        #expect(onDisk < gib + gib / 10, "blob bytes on disk \(onDisk) after overwrite + compact")
        let stats = db.stats()
        #expect(stats.blobGarbageBytes < UInt64(gib / 10))
        #expect(stats.blobLiveBytes >= UInt64(gib))
        #expect(stats.blobFilesDeleted > 0)
        #expect(stats.writeAmplification < 2.2, "WAL + blob + tables over two rounds of 1 GiB")
        for i in stride(from: 0, to: count, by: 17) {
            #expect(BlobTests.same(try db.get(bytes("big\(i)")), value(i, 2)))
        }

        for i in 0..<count { try db.delete(bytes("big\(i)")) }
        try db.compact()
        #expect(BlobTests.blobBytesOnDisk(dir.path) < 64 << 20, "deleted values are freed too")
        try db.close()
        let reopened = try SliceDB(path: dir.path, options: o)
        #expect(try reopened.get(bytes("big1")) == nil)
    }

    @Test func renamedValuesKeepTheirBlobUntilTheLastReferenceGoes() throws {
        let dir = TempDir("slice-blob")
        var o = Options()
        o.blobFileSize = 1 << 20
        let db = try SliceDB(path: dir.path, options: o)
        let v = BlobTests.pattern(21, 2 << 20)
        try db.put(bytes("a"), v)
        try db.put(bytes("filler"), BlobTests.pattern(22, 100_000))
        let written = db.stats().blobBytesWritten
        for (from, to) in [("a", "b"), ("b", "c"), ("c", "d")] {
            var batch = WriteBatch()
            batch.put(bytes(to), try #require(try db.storedValue(bytes(from))))
            batch.delete(bytes(from))
            try db.write(batch)
            try db.compact()
        }
        #expect(db.stats().blobBytesWritten == written, "renames move references, not bytes")
        #expect(BlobTests.same(try db.get(bytes("d")), v))
        #expect(try db.get(bytes("a")) == nil)
        try db.close()
        let reopened = try SliceDB(path: dir.path, options: o)
        #expect(BlobTests.same(try reopened.get(bytes("d")), v))
        try reopened.delete(bytes("d"))
        try reopened.delete(bytes("filler"))
        try reopened.compact()
        #expect(files(in: dir.path, suffix: ".blob").count <= 1, "only the open writer's file may remain")
        #expect(reopened.stats().blobLiveBytes == 0)
    }

    /// Blob files that are mostly garbage are collected: compaction moves their live values
    /// out, and the files go.
    @Test func mostlyGarbageBlobFilesAreCollected() throws {
        let dir = TempDir("slice-blob")
        var o = Options()
        o.blobFileSize = 4 << 20
        let mib = 1 << 20
        var expected: [Int: [UInt8]] = [:]
        do {
            let db = try SliceDB(path: dir.path, options: o)
            // 16 values: four files of four values each.
            for i in 0..<16 {
                expected[i] = BlobTests.pattern(i, mib)
                try db.put(bytes("v\(i)"), expected[i]!)
            }
            // Three of every four overwritten: each old file is 75% garbage, one live value.
            for i in 0..<16 where i % 4 != 0 {
                expected[i] = BlobTests.pattern(100 + i, mib)
                try db.put(bytes("v\(i)"), expected[i]!)
            }
            try db.compact()
            let stats = db.stats()
            #expect(stats.blobBytesRelocated >= UInt64(4 * mib), "the live values of the old files moved")
            let onDisk = BlobTests.blobBytesOnDisk(dir.path)
            #expect(onDisk < 16 * mib + 5 * mib, "old files freed: \(onDisk) bytes of blob files for 16 MiB live")
            for (i, v) in expected { #expect(BlobTests.same(try db.get(bytes("v\(i)")), v), "v\(i)") }
            _ = try db.check()
            try db.close()
        }
        let db = try SliceDB(path: dir.path, options: o)
        for (i, v) in expected { #expect(BlobTests.same(try db.get(bytes("v\(i)")), v), "v\(i) after reopen") }
    }

    /// Small values in blob files (as a mount keeps them): a manual compaction gives back the
    /// space of deleted values although their file was still being appended to (it seals it).
    @Test func deletedSmallBlobValuesAreFreed() throws {
        let dir = TempDir("slice-blob")
        var o = Options()
        o.blobThreshold = 4 << 10
        let db = try SliceDB(path: dir.path, options: o)
        let size = 8 << 10
        for i in 0..<512 { try db.put(bytes("a\(i)"), BlobTests.pattern(i, size)) }
        for i in 0..<512 { try db.delete(bytes("a\(i)")) }
        try db.put(bytes("keep"), BlobTests.pattern(7, size))
        try db.compact()
        #expect(BlobTests.blobBytesOnDisk(dir.path) < 64 << 10, "4 MiB of deleted values still on disk")
        #expect(BlobTests.same(try db.get(bytes("keep")), BlobTests.pattern(7, size)))
        _ = try db.check()
        try db.close()
    }

    /// Blob files created after the last MANIFEST edit, found by recovery, keep their numbers:
    /// a new file must never get one of them (it would truncate it). The store is copied while
    /// open, which is what a crash leaves.
    @Test func recoveryNeverReusesNumbersOfBlobFilesOnDisk() throws {
        let dir = TempDir("slice-blob")
        let crashed = TempDir("slice-blob")
        let db = try SliceDB(path: dir.path)
        // Four streams at once: four blob files, all newer than the manifest.
        let writers = try (0..<4).map { try db.valueWriter(for: bytes("s\($0)")) }
        for (i, w) in writers.enumerated() { try w.write(BlobTests.pattern(i, 200_000)) }
        for w in writers { try w.commit() }
        #expect(files(in: dir.path, suffix: ".blob").count == 4)
        #expect(try run("/bin/cp", ["-a", dir.path + "/.", crashed.path + "/"]).status == 0)
        try db.close()
        let reopened = try SliceDB(path: crashed.path)
        for i in 0..<4 { try reopened.put(bytes("new\(i)"), BlobTests.pattern(10 + i, 100_000)) }
        for i in 0..<4 {
            #expect(BlobTests.same(try reopened.get(bytes("s\(i)")), BlobTests.pattern(i, 200_000)), "s\(i)")
            #expect(BlobTests.same(try reopened.get(bytes("new\(i)")), BlobTests.pattern(10 + i, 100_000)))
        }
        _ = try reopened.check()
    }

    @Test func corruptBlobIsReportedNeverReturned() throws {
        let dir = TempDir("slice-blob")
        let v = BlobTests.pattern(5, 500_000)
        do {
            let db = try SliceDB(path: dir.path)
            try db.put(bytes("v"), v)
            try db.put(bytes("w"), BlobTests.pattern(6, 100_000))
            try db.close()
        }
        let blob = try #require(files(in: dir.path, suffix: ".blob").first)
        try flipByte(blob, at: 16 + 200_000)
        let db = try SliceDB(path: dir.path)
        #expect {
            _ = try db.get(bytes("v"))
        } throws: { ($0 as? SliceError)?.code == .corruption && ($0 as? SliceError)?.path == blob }
        // A range that avoids the damaged chunk still reads; one that touches it fails.
        #expect(BlobTests.same(try db.read(bytes("v"), offset: 0, count: 1000), Array(v[0..<1000])))
        #expect(throws: SliceError.self) { _ = try db.read(bytes("v"), offset: 190_000, count: 20_000) }
        #expect(BlobTests.same(try db.get(bytes("w")), BlobTests.pattern(6, 100_000)))
        #expect {
            _ = try db.check()
        } throws: { ($0 as? SliceError)?.code == .corruption && ($0 as? SliceError)?.path == blob }
    }

    @Test func missingBlobFileFailsOpen() throws {
        let dir = TempDir("slice-blob")
        do {
            let db = try SliceDB(path: dir.path)
            try db.put(bytes("v"), BlobTests.pattern(5, 100_000))
            try db.flush()
            try db.close()
        }
        let blob = try #require(files(in: dir.path, suffix: ".blob").first)
        try FileManager.default.removeItem(atPath: blob)
        #expect {
            _ = try SliceDB(path: dir.path)
        } throws: { ($0 as? SliceError)?.code == .corruption && ($0 as? SliceError)?.path == blob }
    }

    /// A value of 4 GiB streamed in and read back in ranges (bounded only by the disk).
    @Test func fourGiBValue() throws {
        let dir = TempDir("slice-blob")
        let db = try SliceDB(path: dir.path)
        let piece = BlobTests.pattern(11, 1 << 20)
        let pieces = 4096 + 1
        let w = try db.valueWriter(for: bytes("huge"))
        for i in 0..<pieces {
            var p = piece
            p[0] = UInt8(i & 0xff)
            p[1] = UInt8((i >> 8) & 0xff)
            try w.write(p)
        }
        try w.commit()
        let total = UInt64(pieces) << 20
        #expect(try db.valueSize(bytes("huge")) == total)
        for i in [0, 1, 2047, 4095, 4096] {
            let got = try db.read(bytes("huge"), offset: UInt64(i) << 20, count: 1 << 20)
            var p = piece
            p[0] = UInt8(i & 0xff)
            p[1] = UInt8((i >> 8) & 0xff)
            #expect(BlobTests.same(got, p), "piece \(i)")
        }
        try db.close()
        let reopened = try SliceDB(path: dir.path)
        #expect(try reopened.valueSize(bytes("huge")) == total)
        #expect(try reopened.check().blobBytes == total)
    }
}
