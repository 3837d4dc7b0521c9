import Foundation
import Testing

@testable import SliceKV

@Suite struct CompressionTests {
    /// Sorted internal keys with values that compress well (a number and 80 repeated bytes).
    func compressible(_ n: Int) -> [([UInt8], [UInt8])] {
        (0..<n).map { i in
            let v = bytes("value-\(i)-") + Array(repeating: UInt8(ascii: "a") + UInt8(i % 7), count: 80)
            return (makeInternalKey(bytes(String(format: "key%06d", i)), UInt64(i + 1), .value), v)
        }
    }

    func lookup(_ t: TableReader, _ key: String) throws -> [UInt8]? {
        let k = makeInternalKey(bytes(key), maxSequenceNumber, .value)
        guard case .found(let v) = try t.lookup(k, userKeyHash: BloomFilter.hash(bytes(key))) else { return nil }
        return v
    }

    /// Every data block is compressed, the table is smaller, and reads through a mapping and
    /// through `pread` return the original entries (decompressed once, then from the cache).
    @Test(arguments: [Compression.lz4, .zstd], [true, false])
    func compressedTableRoundTrip(compression: Compression, mmap: Bool) throws {
        let dir = TempDir()
        var o = Options()
        o.blockSize = 1024
        let path = dir.file("000001.sst")
        let builder = try TableBuilder(path: path, options: o, compression: compression)
        let es = compressible(5000)
        for (k, v) in es { try builder.add(k, v[...]) }
        _ = try builder.finish()
        let counters = EngineCounters()
        let t = try TableReader(
            path: path, fileNumber: 1, cache: BlockCache(capacityBytes: 8 << 20), stats: counters, mmap: mmap,
            layer: PosixFileLayer.shared)
        let p = t.properties
        #expect(p.dataBlocks > 50)
        #expect(p.compressedBlocks == p.dataBlocks)
        #expect(p.dataStoredBytes * 3 < p.dataRawBytes, "\(p.dataStoredBytes) of \(p.dataRawBytes)")
        #expect(try t.verify() == 5000)
        for i in stride(from: 0, to: 5000, by: 7) {
            #expect(try lookup(t, String(format: "key%06d", i)) == es[i].1)
        }
        let decompressed = counters.blocksDecompressed.load()
        #expect(decompressed >= p.dataBlocks)
        // Cached blocks are kept decompressed: reading them again decompresses nothing.
        for i in stride(from: 0, to: 5000, by: 7) { _ = try lookup(t, String(format: "key%06d", i)) }
        #expect(counters.blocksDecompressed.load() == decompressed)
    }

    /// Random values do not shrink by an eighth: their blocks are stored as they are.
    @Test func incompressibleBlocksAreStoredRaw() throws {
        let dir = TempDir()
        let path = dir.file("000001.sst")
        let builder = try TableBuilder(path: path, options: Options(), compression: .zstd)
        var rng = SeededRandom(seed: 7)
        for i in 0..<2000 {
            let v = (0..<100).map { _ in UInt8.random(in: 0...255, using: &rng) }
            try builder.add(makeInternalKey(bytes(String(format: "key%06d", i)), 1, .value), v[...])
        }
        _ = try builder.finish()
        let t = try TableReader(
            path: path, fileNumber: 1, cache: nil, stats: nil, mmap: true, layer: PosixFileLayer.shared)
        #expect(t.properties.dataBlocks > 10)
        #expect(t.properties.compressedBlocks == 0)
        #expect(t.properties.dataStoredBytes == t.properties.dataRawBytes)
        #expect(try t.verify() == 2000)
    }

    /// A damaged compressed block is caught by its checksum; a payload that passes the
    /// checksum but does not decode to its recorded length is corruption too, and a recorded
    /// length beyond any block is refused before anything is allocated.
    @Test func damageIsCorruptionNeverData() throws {
        let dir = TempDir()
        let path = dir.file("000001.sst")
        let builder = try TableBuilder(path: path, options: Options(), compression: .lz4)
        for (k, v) in compressible(3000) { try builder.add(k, v[...]) }
        _ = try builder.finish()
        try flipByte(path, at: 100)
        let t = try TableReader(
            path: path, fileNumber: 1, cache: nil, stats: nil, mmap: false, layer: PosixFileLayer.shared)
        #expect {
            _ = try lookup(t, "key000000")
        } throws: { ($0 as? SliceError)?.code == .corruption }

        for compression in [Compression.lz4, .zstd] {
            var garbage: [UInt8] = []
            garbage.appendVarint(4096)
            garbage += Array(repeating: 0xA5, count: 300)
            #expect {
                try garbage.withUnsafeBytes {
                    _ = try BlockDecompressor.decompress($0, compression, path: "x", offset: 0)
                }
            } throws: { ($0 as? SliceError)?.code == .corruption }
            var huge: [UInt8] = []
            huge.appendVarint(UInt64(1) << 40)
            huge += [1, 2, 3]
            #expect {
                try huge.withUnsafeBytes { _ = try BlockDecompressor.decompress($0, compression, path: "x", offset: 0) }
            } throws: { ($0 as? SliceError)?.code == .corruption }
        }
    }

    /// A compressed block whose checksum is right but whose payload does not decode (a bug, or
    /// damage that kept the checksum) is `.corruption` on every read, through `pread` and
    /// through the mapping alike, and never trusted on a second read.
    @Test(arguments: [true, false]) func undecodableBlockWithAGoodChecksumIsCorruption(mmap: Bool) throws {
        let dir = TempDir()
        let path = dir.file("000001.sst")
        let builder = try TableBuilder(path: path, options: Options(), compression: .lz4)
        for (k, v) in compressible(3000) { try builder.add(k, v[...]) }
        _ = try builder.finish()
        // The first data block: garble its payload, then write the checksum that matches.
        let first = try TableReader(
            path: path, fileNumber: 1, cache: nil, stats: nil, mmap: false, layer: PosixFileLayer.shared)
        let it = first.index.makeIterator(path: path)
        try it.seekToFirst()
        let handle = try #require(it.value.withUnsafeBytes { BlockHandle.decode($0) })
        var bytes = try #require(readBytes(path))
        let start = Int(handle.offset)
        let n = Int(handle.size)
        #expect(bytes[start + n] == Compression.lz4.tag)
        for i in (start + 8)..<(start + n) { bytes[i] = 0xEE }
        let crc = CRC32C.mask(CRC32C.checksum(Array(bytes[start...(start + n)])))
        withUnsafeBytes(of: crc.littleEndian) { for (i, b) in $0.enumerated() { bytes[start + n + 1 + i] = b } }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let t = try TableReader(
            path: path, fileNumber: 1, cache: nil, stats: nil, mmap: mmap, layer: PosixFileLayer.shared)
        for _ in 0..<2 {
            #expect {
                _ = try lookup(t, "key000000")
            } throws: { ($0 as? SliceError)?.code == .corruption }
        }
        #expect {
            _ = try t.verify()
        } throws: { ($0 as? SliceError)?.code == .corruption }
    }

    func readBytes(_ path: String) -> [UInt8]? { FileManager.default.contents(atPath: path).map { [UInt8]($0) } }

    /// A store compresses by level as configured, reports bytes before and after compression
    /// per level, and reads every table whatever the options it is reopened with.
    @Test func storeCompressesByLevelAndReportsIt() throws {
        let dir = TempDir()
        var o = tinyOptions()
        o.compressionPerLevel = [.none, .lz4]
        o.bottommostCompression = .zstd
        var expected: [[UInt8]: [UInt8]] = [:]
        do {
            let db = try SliceDB(path: dir.path, options: o)
            for i in 0..<3000 {
                let k = bytes(String(format: "k%05d", i))
                let v = bytes("value \(i) ") + Array(repeating: UInt8(ascii: "z"), count: 120)
                try db.put(k, v)
                expected[k] = v
            }
            try db.compact()
            let s = db.stats()
            let deepest = try #require(s.levels.last { $0.files > 0 })
            #expect(deepest.level >= 1)
            #expect(deepest.compressedBlocks == deepest.dataBlocks && deepest.dataBlocks > 0)
            #expect(deepest.uncompressedBytes > 2 * deepest.bytes, "\(deepest)")
            #expect(s.prometheusText.contains("slice_level_uncompressed_bytes{level=\"\(deepest.level)\"}"))
            #expect(s.prometheusText.contains("slice_block_cache_entries "))
            try db.close()
        }
        // Reopened without compression: old tables read, new ones are written raw.
        var plain = o
        plain.setCompression(.none)
        let db = try SliceDB(path: dir.path, options: plain)
        #expect(try allEntries(db).count == expected.count)
        for (k, v) in expected.prefix(200) { #expect(try db.get(k) == v) }
        _ = try db.check()
        for i in 0..<3000 { try db.put(bytes(String(format: "k%05d", i)), bytes("short \(i)")) }
        try db.compact()
        #expect(db.stats().levels.allSatisfy { $0.compressedBlocks == 0 })
        #expect(try db.get(bytes("k00042")) == bytes("short 42"))
        try db.close()
    }

    /// A store written before compression existed (table format 1, a blob file, a WAL with
    /// unflushed writes; `Fixtures/store-format1`, made by the build of 22b67b0) opens with
    /// today's defaults and returns exactly what that build's `slice scan` printed; writes
    /// and a compaction afterwards leave it readable.
    @Test func opensAStoreWrittenByTheFirstTableFormat() throws {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
        let dir = TempDir()
        let source = fixtures.appendingPathComponent("store-format1").path
        for name in try FileManager.default.contentsOfDirectory(atPath: source) {
            try FileManager.default.copyItem(atPath: "\(source)/\(name)", toPath: dir.file(name))
        }
        let text = try String(contentsOf: fixtures.appendingPathComponent("store-format1.tsv"), encoding: .utf8)
        let expected = text.split(separator: "\n").map { line in
            let parts = line.split(separator: "\t", maxSplits: 1, omittingEmptySubsequences: false)
            return KeyValue(key: bytes(String(parts[0])), value: bytes(String(parts[1])))
        }
        #expect(expected.count == 336)
        var o = Options()
        o.compressionPerLevel = [.zstd]
        let db = try SliceDB(path: dir.path, options: o)
        #expect(try allEntries(db) == expected)
        try db.put(bytes("after"), bytes("compression"))
        try db.compact()
        #expect(db.stats().levels.contains { $0.compressedBlocks > 0 })
        #expect(try allEntries(db).count == expected.count + 1)
        #expect(try db.get(bytes("walkey")) == bytes("walvalue"))
        _ = try db.check()
        try db.close()
    }
}
