import Testing

@testable import SliceKV

@Suite struct WALTests {
    func write(_ path: String, _ payloads: [[UInt8]]) throws {
        let w = LogWriter(file: try PosixFileLayer.shared.create(path))
        for p in payloads { try w.add(p) }
        try w.sync()
    }

    func readAll(_ path: String, _ mode: LogReader.Mode) throws -> ([[UInt8]], LogReader.Result) {
        var got: [[UInt8]] = []
        let r = try LogReader(path: path, mode: mode, layer: PosixFileLayer.shared).read { got.append($0) }
        return (got, r)
    }

    @Test func crc32cKnownAnswer() {
        #expect(CRC32C.checksum(bytes("123456789")) == 0xe306_9283)
        let c: UInt32 = 0x1234_5678
        #expect(CRC32C.unmask(CRC32C.mask(c)) == c)
        #expect(CRC32C.mask(c) != c)
        // Extending equals checksumming the concatenation.
        #expect(CRC32C.checksum(bytes("6789"), extending: CRC32C.checksum(bytes("12345"))) == 0xe306_9283)
    }

    @Test func roundTripIncludingFragmentedRecords() throws {
        let dir = TempDir()
        var rng = SeededRandom(seed: 7)
        // Sizes around and far beyond the 32 KiB block, so FIRST/MIDDLE/LAST all occur.
        let sizes = [0, 1, 100, 32 * 1024 - 7, 32 * 1024, 100_000, 5, 300_000, 17]
        let payloads = sizes.map { n in (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) } }
        try write(dir.file("a.log"), payloads)
        let (got, r) = try readAll(dir.file("a.log"), .strict)
        #expect(got == payloads)
        #expect(r.tornTailOffset == nil)
    }

    /// A mapped log (`Options.mmapWrites`) grows in 4 MiB chunks of zeros: read before
    /// `finish`, as a crash leaves it, the zeros end the log; a record cut short in front of
    /// them is a torn tail; `finish` leaves exactly the records.
    @Test func mappedLogAcrossChunksAsACrashLeavesIt() throws {
        let dir = TempDir()
        let path = dir.file("m.log")
        let w = LogWriter(
            file: try PosixFileLayer.shared.open(path, flags: O_RDWR | O_CREAT | O_TRUNC, mode: 0o600), mapped: true)
        var rng = SeededRandom(seed: 11)
        // ~9.5 MiB: three chunks, records and fragments across both chunk boundaries.
        let payloads = (0..<300).map { i in
            (0..<(i % 7 == 0 ? 100_000 : 20_000 + i)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        }
        for p in payloads { try w.add(p) }
        try w.sync()
        let size = try PosixFileLayer.shared.openForReading(path).size()
        #expect(size % Int64(AppendMapping.chunk) == 0 && size > w.size)
        var (got, r) = try readAll(path, .tolerateTornTail)
        #expect(got == payloads)
        #expect(r.tornTailOffset == nil && r.validBytes == w.size)
        // A last record torn in the middle (its end never copied) is dropped, not corruption.
        let f = try PosixFileLayer.shared.open(path, flags: O_RDWR, mode: 0o600)
        let zeros = [UInt8](repeating: 0, count: 5000)
        try zeros.withUnsafeBytes { try f.write($0, at: w.size - 5000) }
        (got, r) = try readAll(path, .tolerateTornTail)
        #expect(got == Array(payloads.dropLast()))
        #expect(r.tornTailOffset != nil)
        try w.finish()
        #expect(try PosixFileLayer.shared.openForReading(path).size() == w.size)
    }

    @Test func tornTailIsDroppedOnlyAtTheEnd() throws {
        let dir = TempDir()
        let payloads = (0..<50).map { i in [UInt8](repeating: UInt8(i), count: 200 + i) }
        let path = dir.file("t.log")
        try write(path, payloads)
        // Cut the last record in half: a crash mid-append.
        let f = try PosixFileLayer.shared.open(path, flags: O_RDWR, mode: 0o600)
        try f.truncate(to: try f.size() - 100)
        let (got, r) = try readAll(path, .tolerateTornTail)
        #expect(got == Array(payloads.dropLast()))
        #expect(r.tornTailOffset != nil)
        // The same file as an older WAL is corruption.
        #expect(throws: SliceError.self) { try readAll(path, .strict) }
    }

    @Test func checksumDamageInTheMiddleIsCorruption() throws {
        let dir = TempDir()
        let payloads = (0..<50).map { i in [UInt8](repeating: UInt8(i), count: 300) }
        let path = dir.file("m.log")
        try write(path, payloads)
        try flipByte(path, at: 20 * 307 + 50)
        do {
            _ = try readAll(path, .tolerateTornTail)
            Issue.record("damage in the middle was not reported")
        } catch let e as SliceError {
            #expect(e.code == .corruption)
            #expect(e.path == path)
            #expect(e.offset == Int64(20 * 307))
        }
    }

    /// A complete last record whose checksum fails is damage, not an unfinished write: a crash
    /// leaves a log cut short or zeros, never a full-length record with other bytes.
    @Test func checksumDamageInTheLastCompleteRecordIsCorruption() throws {
        let dir = TempDir()
        let payloads = (0..<10).map { i in [UInt8](repeating: UInt8(i + 1), count: 300) }
        let path = dir.file("l.log")
        try write(path, payloads)
        try flipByte(path, at: 9 * 307 + 100)
        do {
            _ = try readAll(path, .tolerateTornTail)
            Issue.record("a damaged last record was taken for a torn tail")
        } catch let e as SliceError {
            #expect(e.code == .corruption && e.offset == Int64(9 * 307))
        }
        #expect(throws: SliceError.self) { try readAll(path, .tolerateTruncation) }
        // The lenient modes drop it, and say so.
        for mode in [LogReader.Mode.pointInTime, .skipDamaged] {
            let (got, r) = try readAll(path, mode)
            #expect(got == Array(payloads.prefix(9)))
            #expect(r.dropped.map(\.offset) == [Int64(9 * 307)])
        }
        // Zeros from a sector boundary inside the record on are an unfinished write.
        try write(path, payloads)
        let f = try PosixFileLayer.shared.open(path, flags: O_RDWR, mode: 0o600)
        let zeros = [UInt8](repeating: 0, count: 3070 - 2560)
        try zeros.withUnsafeBytes { try f.write($0, at: 2560) }
        let (got, r) = try readAll(path, .tolerateTornTail)
        #expect(got == Array(payloads.prefix(8)))
        #expect(r.tornTailOffset == Int64(8 * 307))
    }

    /// "Synced through" records make damage below the synced length corruption even where it
    /// looks like lost sectors; a log cut short below a length known from outside (a clean
    /// close, the next WAL's first record) is refused too, though its bytes show nothing.
    @Test func damageOrCutBelowTheSyncedLengthIsCorruption() throws {
        let dir = TempDir()
        let payloads = (0..<10).map { i in [UInt8](repeating: UInt8(i + 1), count: 2000) }
        func writeLog(_ path: String, marks: Bool) throws -> [Int64] {
            let w = LogWriter(file: try PosixFileLayer.shared.create(path), marksSyncs: marks)
            var ends: [Int64] = []
            for p in payloads {
                try w.add(p)
                try w.sync()
                ends.append(w.size)
            }
            return ends
        }
        func zeroSector(_ path: String, at offset: Int64) throws {
            let f = try PosixFileLayer.shared.open(path, flags: O_RDWR, mode: 0o600)
            try [UInt8](repeating: 0, count: 512).withUnsafeBytes { try f.write($0, at: offset) }
        }
        let marked = dir.file("marked.log")
        let ends = try writeLog(marked, marks: true)
        let (got, r) = try readAll(marked, .tolerateTornTail)
        #expect(got == payloads)
        #expect(r.syncedLength == ends[8])  // the last sync is announced by the next append
        // A lost sector inside the fourth record, with later records announcing later syncs.
        let sector = (ends[2] / 512 + 1) * 512
        try zeroSector(marked, at: sector)
        #expect(throws: SliceError.self) { try readAll(marked, .tolerateTornTail) }
        let (kept, pit) = try readAll(marked, .pointInTime)
        #expect(kept == Array(payloads.prefix(3)) && pit.dropped.count == 1)
        // The same without marks (an older log, or syncPolicy none): taken for sectors a power
        // cut lost, so the rest is dropped as a torn tail.
        let plain = dir.file("plain.log")
        _ = try writeLog(plain, marks: false)
        try zeroSector(plain, at: sector)
        let (prefix, torn) = try readAll(plain, .tolerateTornTail)
        #expect(prefix == Array(payloads.prefix(3)) && torn.tornTailOffset != nil)
        // A cut at a record boundary below a length known from outside.
        let cut = dir.file("cut.log")
        let cutEnds = try writeLog(cut, marks: true)
        try PosixFileLayer.shared.open(cut, flags: O_RDWR, mode: 0o600).truncate(to: cutEnds[6])
        let known = cutEnds[9]
        let strictReader = LogReader(
            path: cut, mode: .tolerateTornTail, layer: PosixFileLayer.shared, knownSyncedLength: known)
        #expect(throws: SliceError.self) { try strictReader.read { _ in } }
        let lenient = LogReader(path: cut, mode: .pointInTime, layer: PosixFileLayer.shared, knownSyncedLength: known)
        var n = 0
        let lr = try lenient.read { _ in n += 1 }
        #expect(n == 7 && !lr.dropped.isEmpty)
    }

    /// A metadata record never spans blocks: where it does not fit, the writer pads the block
    /// with zeros (up to 23 bytes, more than the 6 of a plain trailer), and the reader skips
    /// them. Found by the mount kill loop: recovery took such padding for damage.
    @Test func metadataRecordsPadBlocksAndReadBack() throws {
        let dir = TempDir()
        for fill in stride(from: 32_700, through: 32_768, by: 1) {
            let path = dir.file("p\(fill).log")
            let w = LogWriter(file: try PosixFileLayer.shared.create(path), marksSyncs: true)
            // One record that ends `32768 - fill` bytes before the block boundary, a sync, and
            // another record, whose "synced through" mark lands at the boundary.
            let first = [UInt8](repeating: 1, count: fill - LogFormat.headerSize)
            try w.add(first)
            try w.sync()
            try w.add([2, 2, 2])
            let (got, r) = try readAll(path, .strict)
            #expect(got == [first, [2, 2, 2]], "fill \(fill)")
            #expect(r.syncedLength == Int64(fill), "fill \(fill)")
        }
    }

    /// A kill in the middle of a copy into a mapped WAL can leave the end of the copied bytes
    /// written and the header still zero (memcpy may store the end first): an unfinished
    /// write, not damage. Found by the mount kill loop.
    @Test func mappedCopyCutWithItsHeaderStillZeroIsATornTail() throws {
        let dir = TempDir()
        let path = dir.file("z.log")
        let w = LogWriter(
            file: try PosixFileLayer.shared.open(path, flags: O_RDWR | O_CREAT | O_TRUNC, mode: 0o600), mapped: true,
            marksSyncs: true)
        let payloads = (0..<20).map { i in [UInt8](repeating: UInt8(i + 1), count: 900) }
        for p in payloads.dropLast() {
            try w.add(p)
            try w.sync()
        }
        let start = w.size
        try w.add(payloads.last!)
        // The last record's first 100 bytes were never stored.
        let f = try PosixFileLayer.shared.open(path, flags: O_RDWR, mode: 0o600)
        try [UInt8](repeating: 0, count: 100).withUnsafeBytes { try f.write($0, at: start) }
        let (got, r) = try readAll(path, .tolerateTornTail)
        #expect(got == Array(payloads.dropLast()))
        #expect(r.tornTailOffset != nil)
    }

    @Test func writeBatchEncoding() throws {
        var b = WriteBatch()
        b.put("a", "1")
        b.delete("b")
        b.put(bytes("c"), [UInt8](repeating: 9, count: 1000))
        b.sequence = 42
        #expect(b.count == 3)
        var seen: [(ValueKind, [UInt8], Int)] = []
        try b.forEach { k, key, value in seen.append((k, Array(key), value.count)) }
        #expect(seen.map(\.0) == [.value, .deletion, .value])
        #expect(seen.map(\.1) == [[1] + bytes("a"), [1] + bytes("b"), [1] + bytes("c")])  // keyspace byte first
        #expect(seen.map(\.2) == [1, 0, 1000])
        #expect(WriteBatch(rep: b.rep).sequence == 42)
        var broken = b.rep
        broken.removeLast(10)
        #expect(throws: SliceError.self) { try WriteBatch(rep: broken).forEach { _, _, _ in } }
    }
}

#if canImport(Glibc)
    import Glibc
#endif
