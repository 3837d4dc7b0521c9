import Testing

@testable import SliceKV

@Suite struct WALTests {
    func write(_ path: String, _ payloads: [[UInt8]]) throws {
        let w = LogWriter(file: try File.create(path))
        for p in payloads { try w.add(p) }
        try w.sync()
    }

    func readAll(_ path: String, _ mode: LogReader.Mode) throws -> ([[UInt8]], LogReader.Result) {
        var got: [[UInt8]] = []
        let r = try LogReader(path: path, mode: mode).read { got.append($0) }
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
        let w = LogWriter(file: try File.open(path, flags: O_RDWR | O_CREAT | O_TRUNC), mapped: true)
        var rng = SeededRandom(seed: 11)
        // ~9.5 MiB: three chunks, records and fragments across both chunk boundaries.
        let payloads = (0..<300).map { i in
            (0..<(i % 7 == 0 ? 100_000 : 20_000 + i)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        }
        for p in payloads { try w.add(p) }
        try w.sync()
        let size = try File.openForReading(path).size()
        #expect(size % Int64(AppendMapping.chunk) == 0 && size > w.size)
        var (got, r) = try readAll(path, .tolerateTornTail)
        #expect(got == payloads)
        #expect(r.tornTailOffset == nil && r.validBytes == w.size)
        // A last record torn in the middle (its end never copied) is dropped, not corruption.
        let f = try File.open(path, flags: O_RDWR)
        let zeros = [UInt8](repeating: 0, count: 5000)
        try zeros.withUnsafeBytes { try f.write($0, at: w.size - 5000) }
        (got, r) = try readAll(path, .tolerateTornTail)
        #expect(got == Array(payloads.dropLast()))
        #expect(r.tornTailOffset != nil)
        try w.finish()
        #expect(try File.openForReading(path).size() == w.size)
    }

    @Test func tornTailIsDroppedOnlyAtTheEnd() throws {
        let dir = TempDir()
        let payloads = (0..<50).map { i in [UInt8](repeating: UInt8(i), count: 200 + i) }
        let path = dir.file("t.log")
        try write(path, payloads)
        // Cut the last record in half: a crash mid-append.
        let f = try File.open(path, flags: O_RDWR)
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

    @Test func checksumDamageInTheLastRecordIsATornTail() throws {
        let dir = TempDir()
        let payloads = (0..<10).map { i in [UInt8](repeating: UInt8(i), count: 300) }
        let path = dir.file("l.log")
        try write(path, payloads)
        try flipByte(path, at: 9 * 307 + 100)
        let (got, r) = try readAll(path, .tolerateTornTail)
        #expect(got == Array(payloads.prefix(9)))
        #expect(r.tornTailOffset == Int64(9 * 307))
        // The manifest never tolerates a bad checksum.
        #expect(throws: SliceError.self) { try readAll(path, .tolerateTruncation) }
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
