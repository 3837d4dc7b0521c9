import Foundation
import Testing

@testable import SliceKV

#if canImport(Glibc)
    import Glibc
#endif

/// Indirect entries: a key whose value is a chunked value stored under other keys (how SliceFS
/// keeps a file's bytes in pieces while its path key still reads as the whole file).
@Suite struct IndirectValueTests {
    /// Where the tests keep chunks (any keyspace but the user's would do).
    static let chunks = Keyspace(rawValue: 0x30)

    /// A chunked value as a writer lays it out: chunk index to bytes.
    struct Layout {
        var prefix: [UInt8]
        var length: UInt64
        var shift: UInt8
        var chunks: [UInt64: [UInt8]] = [:]

        var reference: IndirectReference { IndirectReference(keyspace: IndirectValueTests.chunks, prefix: prefix) }

        /// Puts the header, every chunk and `key`'s indirect entry.
        func put(_ key: String, into batch: inout WriteBatch) {
            batch.put(
                ChunkedValue.headerKey(prefix), ChunkedValue.Header(length: length, chunkShift: shift).encode(),
                keyspace: IndirectValueTests.chunks)
            for (i, c) in chunks { batch.put(ChunkedValue.chunkKey(prefix, i), c, keyspace: IndirectValueTests.chunks) }
            batch.putIndirect(bytes(key), to: reference)
        }

        /// The bytes a reader must see: holes and short chunks zero-filled, bytes past the chunk
        /// size or `length` ignored.
        var expected: [UInt8] {
            var out = [UInt8](repeating: 0, count: Int(length))
            let size = 1 << Int(shift)
            for (i, c) in chunks {
                let start = Int(i) << Int(shift)
                guard start < out.count else { continue }
                let n = min(c.count, size, out.count - start)
                out.replaceSubrange(start..<(start + n), with: c[0..<n])
            }
            return out
        }
    }

    /// Holes, a short chunk, a chunk longer than the chunk size, a chunk past `length`.
    static func sampleLayout(prefix: String = "ino7") -> Layout {
        var l = Layout(prefix: bytes(prefix), length: 5 * 4096 + 100, shift: 12)
        l.chunks[0] = BlobTests.pattern(1, 4096)
        // chunk 1: a hole
        l.chunks[2] = BlobTests.pattern(2, 1000)
        l.chunks[3] = BlobTests.pattern(3, 5000)  // 904 bytes past the chunk size: ignored
        // chunk 4: a hole
        l.chunks[5] = BlobTests.pattern(5, 4096)  // only 100 bytes are inside `length`
        l.chunks[6] = BlobTests.pattern(6, 10)  // wholly past `length`
        return l
    }

    static func open(_ dir: TempDir, _ options: Options = Options()) throws -> SliceDB {
        try SliceDB(path: dir.path, options: options)
    }

    /// Every ranged read of `key` matches `expected`, at offsets chosen to cross chunk edges and
    /// run past the end.
    static func expectRangedReads(
        _ db: SliceDB, _ key: String, _ expected: [UInt8], chunkSize: Int, snapshot: Snapshot? = nil, seed: UInt64 = 1
    ) throws {
        var offsets = [0, 1, chunkSize - 1, chunkSize, chunkSize + 1, 2 * chunkSize - 3, expected.count - 1]
        var rng = SeededRandom(seed: seed)
        for _ in 0..<30 { offsets.append(Int.random(in: 0..<max(1, expected.count), using: &rng)) }
        for at in offsets where at >= 0 {
            for n in [1, 7, chunkSize, chunkSize + 2, 3 * chunkSize + 5] {
                let got = try db.read(bytes(key), offset: UInt64(at), count: n, snapshot: snapshot)
                let want = at < expected.count ? Array(expected[at..<min(expected.count, at + n)]) : []
                #expect(BlobTests.same(got, want), "read \(n) at \(at)")
            }
        }
        #expect(try db.read(bytes(key), offset: UInt64(expected.count), count: 10, snapshot: snapshot) == [])
        #expect(try db.read(bytes(key), offset: UInt64(expected.count) + 99, count: 10, snapshot: snapshot) == [])
    }

    // MARK: Formats

    @Test func formatsAreTheDocumentedBytes() throws {
        #expect(ChunkedValue.headerKey([7, 8]) == [7, 8])
        #expect(ChunkedValue.chunkKey([7, 8], 0x0102) == [7, 8, 0, 0, 0, 0, 0, 0, 1, 2])
        let h = ChunkedValue.Header(length: 0x0102_0304, chunkShift: 16)
        #expect(h.encode() == [1, 16, 4, 3, 2, 1, 0, 0, 0, 0])
        #expect(ChunkedValue.Header(decoding: h.encode()) == h)
        #expect(h.chunkSize == 65536)
        #expect(ChunkedValue.Header(decoding: [2, 16, 4, 3, 2, 1, 0, 0, 0, 0]) == nil, "unknown version")
        #expect(ChunkedValue.Header(decoding: [1, 11, 4, 3, 2, 1, 0, 0, 0, 0]) == nil, "chunk shift too small")
        #expect(ChunkedValue.Header(decoding: [1, 25, 4, 3, 2, 1, 0, 0, 0, 0]) == nil, "chunk shift too large")
        #expect(ChunkedValue.Header(decoding: [1, 16, 4, 3, 2, 1, 0, 0, 0]) == nil, "short")
        let r = IndirectReference(keyspace: Keyspace(rawValue: 0x12), prefix: [9, 9])
        #expect(r.encode() == [1, 0x12, 9, 9])
        #expect(IndirectReference(decoding: r.encode()) == r)
        #expect(IndirectReference(decoding: [1, 0x12]) == nil, "empty prefix")
        #expect(IndirectReference(decoding: [2, 0x12, 9]) == nil, "unknown version")
        #expect(ValueKind.forSeek == .indirect, "the seek kind is the highest kind")
    }

    // MARK: Reads

    @Test func getReadAndSizeResolveHolesShortChunksAndTail() async throws {
        let dir = TempDir("slice-indirect")
        let db = try Self.open(dir)
        let layout = Self.sampleLayout()
        var batch = WriteBatch()
        layout.put("file.bin", into: &batch)
        batch.put(bytes("plain"), bytes("value"))
        try db.write(batch)
        let expected = layout.expected
        #expect(expected.count == 20580)
        #expect(BlobTests.same(try db.get(bytes("file.bin")), expected))
        #expect(try db.valueSize(bytes("file.bin")) == layout.length)
        try Self.expectRangedReads(db, "file.bin", expected, chunkSize: 4096)
        #expect(try db.get(bytes("plain")) == bytes("value"))
        // The chunked value's own keys read as what they are.
        #expect(
            try db.get(layout.prefix, keyspace: Self.chunks)
                == ChunkedValue.Header(length: layout.length, chunkShift: 12).encode())
        let tree = LSMTree(db)
        let asyncValue = try await tree.get(bytes("file.bin"))
        #expect(BlobTests.same(asyncValue, expected), "the async fast path leaves indirect values to the slow path")
        let report = try db.check()
        #expect(report.indirectValues == 1)
    }

    @Test func emptyAndAllHoleValues() throws {
        let dir = TempDir("slice-indirect")
        let db = try Self.open(dir)
        var batch = WriteBatch()
        Layout(prefix: bytes("empty"), length: 0, shift: 12).put("empty", into: &batch)
        Layout(prefix: bytes("sparse"), length: 3 << 20, shift: 20).put("sparse", into: &batch)
        try db.write(batch)
        #expect(try db.get(bytes("empty")) == [])
        #expect(try db.valueSize(bytes("empty")) == 0)
        #expect(try db.read(bytes("empty"), offset: 0, count: 10) == [])
        #expect(BlobTests.same(try db.get(bytes("sparse")), [UInt8](repeating: 0, count: 3 << 20)))
    }

    @Test func chunksInBlobFilesAreReadThroughTheNormalPath() throws {
        let dir = TempDir("slice-indirect")
        var o = Options()
        o.blobThreshold = 4096
        var layout = Layout(prefix: bytes("big"), length: 3 * 65536 + 5000, shift: 16)
        layout.chunks[0] = BlobTests.pattern(10, 65536)
        layout.chunks[2] = BlobTests.pattern(12, 30000)
        layout.chunks[3] = BlobTests.pattern(13, 9000)  // 4000 bytes past `length`
        let expected = layout.expected
        do {
            let db = try Self.open(dir, o)
            var batch = WriteBatch()
            layout.put("big.bin", into: &batch)
            try db.write(batch)
            #expect(db.stats().blobValuesWritten == 3, "chunks put in a batch go to blob files")
            #expect(BlobTests.same(try db.get(bytes("big.bin")), expected))
            try Self.expectRangedReads(db, "big.bin", expected, chunkSize: 65536)
            try db.flush()
            try db.compact()
            #expect(BlobTests.same(try db.get(bytes("big.bin")), expected))
            #expect(try db.check().indirectValues == 1)
            try db.close()
        }
        let db = try Self.open(dir, o)
        #expect(BlobTests.same(try db.get(bytes("big.bin")), expected))
        try Self.expectRangedReads(db, "big.bin", expected, chunkSize: 65536, seed: 2)
    }

    @Test func aSnapshotSeesTheChunksAsTheyWereWhenItWasTaken() throws {
        let dir = TempDir("slice-indirect")
        var o = tinyOptions()
        o.blobThreshold = 3000
        let db = try Self.open(dir, o)
        let old = Self.sampleLayout()
        var batch = WriteBatch()
        old.put("file.bin", into: &batch)
        try db.write(batch)
        let snapshot = try db.snapshot()
        // Rewrite a chunk, fill a hole and grow the value; the entry itself is untouched.
        var new = old
        new.length = 7 * 4096
        new.chunks[0] = BlobTests.pattern(100, 4096)
        new.chunks[1] = BlobTests.pattern(101, 2000)
        batch = WriteBatch()
        batch.put(
            ChunkedValue.headerKey(new.prefix), ChunkedValue.Header(length: new.length, chunkShift: 12).encode(),
            keyspace: Self.chunks)
        for i: UInt64 in [0, 1] {
            batch.put(ChunkedValue.chunkKey(new.prefix, i), new.chunks[i]!, keyspace: Self.chunks)
        }
        try db.write(batch)
        func verify() throws {
            #expect(BlobTests.same(try db.get(bytes("file.bin"), snapshot: snapshot), old.expected))
            #expect(try db.valueSize(bytes("file.bin"), snapshot: snapshot) == old.length)
            try Self.expectRangedReads(db, "file.bin", old.expected, chunkSize: 4096, snapshot: snapshot)
            #expect(BlobTests.same(try db.get(bytes("file.bin")), new.expected))
            #expect(try db.valueSize(bytes("file.bin")) == new.length)
            try Self.expectRangedReads(db, "file.bin", new.expected, chunkSize: 4096, seed: 3)
        }
        try verify()
        // Overwrites pile up and compaction runs: the snapshot's versions must survive it.
        for round in 0..<5 {
            batch = WriteBatch()
            batch.put(ChunkedValue.chunkKey(new.prefix, 0), new.chunks[0]!, keyspace: Self.chunks)
            for i in 0..<40 { batch.put(bytes("filler\(round)-\(i)"), BlobTests.pattern(i, 500)) }
            try db.write(batch)
        }
        try db.flush()
        try db.compact()
        try verify()
    }

    @Test func survivesWALReplayFlushCompactionAndReopen() throws {
        let dir = TempDir("slice-indirect")
        let layout = Self.sampleLayout()
        let expected = layout.expected
        do {
            let db = try Self.open(dir, tinyOptions())
            var batch = WriteBatch()
            layout.put("file.bin", into: &batch)
            try db.write(batch)
            try db.close()
        }
        do {
            // Replayed from the WAL.
            let db = try Self.open(dir, tinyOptions())
            #expect(BlobTests.same(try db.get(bytes("file.bin")), expected))
            try db.flush()
            #expect(BlobTests.same(try db.get(bytes("file.bin")), expected))
            try db.compact()
            #expect(BlobTests.same(try db.get(bytes("file.bin")), expected))
            try db.close()
        }
        var o = tinyOptions()
        o.readOnly = true
        let db = try Self.open(dir, o)
        #expect(BlobTests.same(try db.get(bytes("file.bin")), expected))
        try Self.expectRangedReads(db, "file.bin", expected, chunkSize: 4096)
        #expect(try db.check().indirectValues == 1)
    }

    // MARK: Scans

    @Test func scansReturnResolvedValuesAndKeysOnlyScansReadNoChunks() throws {
        let dir = TempDir("slice-indirect")
        let db = try Self.open(dir)
        var batch = WriteBatch()
        let a = Self.sampleLayout(prefix: "ino-a")
        var b = Layout(prefix: bytes("ino-b"), length: 10, shift: 12)
        b.chunks[0] = bytes("0123456789abc")
        a.put("d/a", into: &batch)
        b.put("d/b", into: &batch)
        batch.put(bytes("d/c"), bytes("plain"))
        try db.write(batch)
        let expected = [
            KeyValue(key: bytes("d/a"), value: a.expected), KeyValue(key: bytes("d/b"), value: bytes("0123456789")),
            KeyValue(key: bytes("d/c"), value: bytes("plain")),
        ]
        #expect(try allEntries(db, .prefix(bytes("d/"))) == expected)
        var reversed: [KeyValue] = []
        let r = try db.scan(.prefix(bytes("d/")), reverse: true)
        while let kv = try r.next() { reversed.append(kv) }
        #expect(reversed == expected.reversed())
        var seen: [KeyValue] = []
        try db.scan(.prefix(bytes("d/"))).forEach { k, v in
            seen.append(KeyValue(key: Array(k), value: Array(v)))
            return true
        }
        #expect(seen == expected)
        seen = []
        try db.scan(.prefix(bytes("d/")), reverse: true).forEach { k, v in
            seen.append(KeyValue(key: Array(k), value: Array(v)))
            return true
        }
        #expect(seen == expected.reversed())

        // A value too large to read whole: keys-only iteration never reads it.
        batch = WriteBatch()
        Layout(prefix: bytes("ino-huge"), length: 1 << 40, shift: 20).put("d/huge", into: &batch)
        try db.write(batch)
        for reverse in [false, true] {
            var keys: [[UInt8]] = []
            let c = try db.scan(.prefix(bytes("d/")), reverse: reverse)
            while let k = try c.nextKey() { keys.append(k) }
            #expect(keys.count == 4)
            var n = 0
            try db.scan(.prefix(bytes("d/")), reverse: reverse).forEach(values: false) { _, v in
                #expect(v.isEmpty)
                n += 1
                return true
            }
            #expect(n == 4)
            #expect(throws: SliceError.self) { try allEntries(db, .prefix(bytes("d/h"))) }
        }
    }

    // MARK: Limits and damage

    @Test func aHugeSparseValueIsRefusedWholeButReadsInPieces() throws {
        let dir = TempDir("slice-indirect")
        let db = try Self.open(dir)
        var batch = WriteBatch()
        Layout(prefix: bytes("ino-tb"), length: 1 << 40, shift: 20).put("huge", into: &batch)
        try db.write(batch)
        let rssBefore = Self.maxResidentBytes()
        let start = Date()
        do {
            _ = try db.get(bytes("huge"))
            Issue.record("a 1 TiB get succeeded")
        } catch let e as SliceError {
            #expect(e.code == .invalidArgument)
            #expect(e.message.contains("read("), "\(e.message)")
            #expect(e.message.contains("maxIndirectReadBytes"), "\(e.message)")
        }
        #expect(Date().timeIntervalSince(start) < 1)
        #expect(Self.maxResidentBytes() - rssBefore < 64 << 20, "nothing of the value's size was allocated")
        #expect(try db.valueSize(bytes("huge")) == 1 << 40)
        #expect(try db.read(bytes("huge"), offset: 1 << 39, count: 5000) == [UInt8](repeating: 0, count: 5000))
        #expect(try db.read(bytes("huge"), offset: (1 << 40) - 3, count: 5000) == [0, 0, 0])
        // A chunk far out in the value reads back in place.
        batch = WriteBatch()
        batch.put(ChunkedValue.chunkKey(bytes("ino-tb"), 1 << 19), bytes("here"), keyspace: Self.chunks)
        try db.write(batch)
        #expect(try db.read(bytes("huge"), offset: (1 << 39) - 2, count: 8) == [0, 0] + bytes("here") + [0, 0])

        // The bound is an option; maxValueSize bounds whole reads too.
        try db.close()
        var o = Options()
        o.maxIndirectReadBytes = 1000
        batch = WriteBatch()
        var small = Layout(prefix: bytes("ino-s"), length: 1001, shift: 12)
        small.chunks[0] = BlobTests.pattern(1, 1001)
        small.put("small", into: &batch)
        let limited = try Self.open(dir, o)
        try limited.write(batch)
        #expect(throws: SliceError.self) { try limited.get(bytes("small")) }
        #expect(try limited.read(bytes("small"), offset: 0, count: 2000) == small.expected)
        try limited.close()
        o = Options()
        o.maxValueSize = 1000
        let bounded = try Self.open(dir, o)
        do {
            _ = try bounded.get(bytes("small"))
            Issue.record("a value over maxValueSize was returned whole")
        } catch let e as SliceError {
            #expect(e.code == .invalidArgument && e.message.contains("maxValueSize"), "\(e)")
        }
    }

    @Test func aDanglingOrMalformedReferenceIsCorruptionNamingTheKey() throws {
        let dir = TempDir("slice-indirect")
        let db = try Self.open(dir)
        var batch = WriteBatch()
        batch.putIndirect(bytes("orphan"), to: IndirectReference(keyspace: Self.chunks, prefix: bytes("nothing")))
        batch.put(bytes("bad-header"), [1, 2, 3], keyspace: Self.chunks)
        batch.putIndirect(bytes("garbled"), to: IndirectReference(keyspace: Self.chunks, prefix: bytes("bad-header")))
        try db.write(batch)
        for key in ["orphan", "garbled"] {
            func expectCorruption(_ what: String, _ body: () throws -> Void) {
                do {
                    try body()
                    Issue.record("\(what) of \(key) succeeded")
                } catch let e as SliceError {
                    #expect(e.code == .corruption, "\(what): \(e)")
                    #expect(e.message.contains("\"\(key)\""), "\(what): \(e.message)")
                } catch { Issue.record("\(error)") }
            }
            expectCorruption("get") { _ = try db.get(bytes(key)) }
            expectCorruption("valueSize") { _ = try db.valueSize(bytes(key)) }
            expectCorruption("read") { _ = try db.read(bytes(key), offset: 0, count: 10) }
            expectCorruption("storedValue") { _ = try db.storedValue(bytes(key)) }
            expectCorruption("scan") { _ = try allEntries(db, .prefix(bytes(key))) }
        }
        #expect(try db.scan().nextKey() == bytes("garbled"), "keys-only scans do not resolve")
        #expect(throws: SliceError.self) { try db.check() }
        // Deleting the entry ends the damage.
        batch = WriteBatch()
        batch.delete(bytes("orphan"))
        batch.delete(bytes("garbled"))
        try db.write(batch)
        #expect(try db.check().indirectValues == 0)
    }

    @Test func malformedIndirectPutsAreRefused() throws {
        let dir = TempDir("slice-indirect")
        let db = try Self.open(dir)
        var batch = WriteBatch()
        batch.putIndirect(bytes("self"), to: IndirectReference(keyspace: .user, prefix: bytes("self")))
        #expect(throws: SliceError.self) { try db.write(batch) }
        batch = WriteBatch()
        batch.putIndirect(
            bytes("long"), to: IndirectReference(keyspace: Self.chunks, prefix: [UInt8](repeating: 1, count: 65536)))
        #expect(throws: SliceError.self) { try db.write(batch) }
        batch = WriteBatch()
        batch.putIndirect(bytes("empty"), to: IndirectReference(keyspace: Self.chunks, prefix: []))
        #expect(throws: SliceError.self) { try db.write(batch) }
        #expect(try db.get(bytes("self")) == nil)
    }

    // MARK: Writes through the entry

    @Test func deletingTheEntryLeavesNothing() throws {
        let dir = TempDir("slice-indirect")
        let db = try Self.open(dir, tinyOptions())
        var batch = WriteBatch()
        Self.sampleLayout().put("file.bin", into: &batch)
        try db.write(batch)
        try db.flush()
        try db.delete(bytes("file.bin"))
        #expect(try db.get(bytes("file.bin")) == nil)
        #expect(try db.valueSize(bytes("file.bin")) == nil)
        #expect(try db.read(bytes("file.bin"), offset: 0, count: 10) == nil)
        #expect(try allEntries(db).isEmpty)
        try db.compact()
        #expect(try db.get(bytes("file.bin")) == nil)
    }

    @Test func aStoredValuePutUnderAnotherKeyIsTheSameReference() throws {
        let dir = TempDir("slice-indirect")
        let db = try Self.open(dir)
        let layout = Self.sampleLayout()
        var batch = WriteBatch()
        layout.put("from", into: &batch)
        try db.write(batch)
        let stored = try #require(try db.storedValue(bytes("from")))
        #expect(stored.size == layout.length)
        batch = WriteBatch()
        batch.put(bytes("to"), stored)
        batch.delete(bytes("from"))
        try db.write(batch)
        #expect(try db.get(bytes("from")) == nil)
        #expect(BlobTests.same(try db.get(bytes("to")), layout.expected))
        // Still indirect: a chunk written later shows through the new key.
        batch = WriteBatch()
        batch.put(ChunkedValue.chunkKey(layout.prefix, 1), bytes("new"), keyspace: Self.chunks)
        try db.write(batch)
        #expect(try db.read(bytes("to"), offset: 4096, count: 4) == bytes("new") + [0])
    }

    @Test func theCommandLineReadsIndirectValues() throws {
        let dir = TempDir("slice-indirect")
        let layout = Self.sampleLayout()
        do {
            let db = try Self.open(dir)
            var batch = WriteBatch()
            layout.put("file.bin", into: &batch)
            try db.write(batch)
            try db.close()
        }
        let got = try run(sliceExecutable, ["get", dir.path, "file.bin"])
        #expect(got.status == 0, "\(got.err)")
        #expect(BlobTests.same(got.bytes, layout.expected))
        let keys = try run(sliceExecutable, ["scan", dir.path, "--keys-only"])
        #expect(keys.out == "file.bin\n")
        let check = try run(sliceExecutable, ["check", dir.path])
        #expect(check.status == 0, "\(check.err)")
        #expect(check.out.contains("1 chunked values"), "\(check.out)")
    }

    // MARK: Helpers

    /// The process's peak resident set size.
    static func maxResidentBytes() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_maxrss * 1024
    }
}
