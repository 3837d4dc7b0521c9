import Foundation
import Testing

@testable import SliceKV

@Suite struct TableTests {
    /// Sorted internal keys "key%06d" with one version each.
    func entries(_ n: Int) -> [([UInt8], [UInt8])] {
        (0..<n).map { i in
            (makeInternalKey(bytes(String(format: "key%06d", i)), UInt64(i + 1), .value), bytes("value-\(i)"))
        }
    }

    @Test func blockBuildAndSeek() throws {
        var b = BlockBuilder(restartInterval: 4)
        let es = entries(100)
        for (k, v) in es { b.add(k, v) }
        let block = try Block(b.finish(), path: "mem", offset: 0)
        let it = block.makeIterator(path: "mem")
        try it.seekToFirst()
        var n = 0
        while it.isValid {
            #expect(it.key == es[n].0)
            #expect(Array(it.value) == es[n].1)
            n += 1
            try it.next()
        }
        #expect(n == 100)
        for i in [0, 1, 3, 4, 5, 50, 99] {
            try it.seek(es[i].0)
            #expect(it.key == es[i].0)
        }
        // Between keys: lands on the next one. Past the end: invalid.
        try it.seek(makeInternalKey(bytes("key000010x"), 100, .value))
        #expect(it.key == es[11].0)
        try it.seek(makeInternalKey(bytes("zzz"), 1, .value))
        #expect(!it.isValid)
    }

    /// Both filter shapes: the blocked one tables are written with, and the classic one that
    /// older tables carry.
    @Test(arguments: [true, false]) func bloomFalsePositiveRateIsNearTheory(blocked: Bool) {
        for bits in [6, 10, 16] {
            let n = 20_000
            let hashes = (0..<n).map { BloomFilter.hash(bytes("member-\($0)")) }
            let mayContain: (UInt64) -> Bool
            let theory: Double
            if blocked {
                let filter = BlockedBloomFilter(BlockedBloomFilter.build(hashes: hashes, bitsPerKey: bits))!
                mayContain = { filter.mayContain(hash: $0) }
                theory = BlockedBloomFilter.expectedFalsePositiveRate(bitsPerKey: bits)
            } else {
                let filter = BloomFilter.build(hashes: hashes, bitsPerKey: bits)
                mayContain = { BloomFilter.mayContain(filter, hash: $0) }
                theory = BloomFilter.expectedFalsePositiveRate(bitsPerKey: bits)
            }
            #expect(hashes.allSatisfy(mayContain))
            let trials = 100_000
            var positives = 0
            for i in 0..<trials where mayContain(BloomFilter.hash(bytes("other-\(i)"))) { positives += 1 }
            let rate = Double(positives) / Double(trials)
            #expect(rate < 2 * theory, "bits \(bits): rate \(rate), theory \(theory)")
            #expect(rate > theory / 2, "bits \(bits): rate \(rate), theory \(theory)")
        }
    }

    @Test func blockedFilterTheoryAtTenBitsAKey() {
        let rate = BlockedBloomFilter.expectedFalsePositiveRate(bitsPerKey: 10)
        #expect(rate > 0.007 && rate < 0.013, "\(rate)")
        #expect(BlockedBloomFilter(Array(repeating: 0, count: 64)) == nil)  // no probe count
        #expect(BlockedBloomFilter(Array(repeating: 0, count: 64) + [40]) == nil)
    }

    /// Blocks read with `pread` and from a mapping of the file answer the same, and so do
    /// tables with the classic filter that tables had before the blocked one.
    @Test(arguments: [(false, false), (true, false), (true, true)])
    func tableRoundTrip(mmap: Bool, classicFilter: Bool) throws {
        let dir = TempDir()
        var o = Options()
        o.blockSize = 1024
        let path = dir.file("000001.sst")
        let builder = try TableBuilder(path: path, options: o)
        builder.writesClassicFilter = classicFilter
        let es = entries(5000)
        for (k, v) in es { try builder.add(k, v[...]) }
        let size = try builder.finish()
        #expect(Int(size) == fileSize(path))
        let counters = EngineCounters()
        let cache = BlockCache(capacityBytes: 1 << 20)
        let t = try TableReader(
            path: path, fileNumber: 1, cache: cache, stats: counters, mmap: mmap, layer: PosixFileLayer.shared)
        #expect((t.filter != nil) == classicFilter && (t.blockedFilter != nil) == !classicFilter)
        #expect(t.properties.entries == 5000)
        #expect(t.properties.dataBlocks > 10)
        #expect(try t.verify() == 5000)
        for i in stride(from: 0, to: 5000, by: 37) {
            let lookup = makeInternalKey(bytes(String(format: "key%06d", i)), maxSequenceNumber, .value)
            guard case .found(let v) = try t.lookup(lookup, userKeyHash: BloomFilter.hash(Array(lookup.dropLast(8))))
            else {
                Issue.record("key \(i) not found")
                continue
            }
            #expect(Array(v) == bytes("value-\(i)"))
        }
        // Misses are mostly answered by the bloom filter.
        for i in 0..<1000 {
            let lookup = makeInternalKey(bytes("absent\(i)"), maxSequenceNumber, .value)
            guard case .absent = try t.lookup(lookup, userKeyHash: BloomFilter.hash(Array(lookup.dropLast(8)))) else {
                Issue.record("absent key found")
                continue
            }
        }
        #expect(counters.bloomUseful.load(ordering: .relaxed) > 950)
        // A sequence number below the entry's hides it.
        let old = makeInternalKey(bytes("key000100"), 5, .value)
        guard case .absent = try t.lookup(old, userKeyHash: BloomFilter.hash(bytes("key000100"))) else {
            Issue.record("future version visible")
            return
        }
    }

    @Test func blockCacheEvictsLeastRecentlyUsed() throws {
        let cache = BlockCache(capacityBytes: 16 * 2000)  // 16 shards of 2000 bytes
        func block(_ n: Int) throws -> Block {
            var b = BlockBuilder(restartInterval: 16)
            b.add(bytes("k"), [UInt8](repeating: 1, count: n))
            return try Block(b.finish(), path: "mem", offset: 0)
        }
        // Many blocks into a small cache: usage stays within capacity.
        for i in 0..<500 { cache.insert(.init(file: 1, offset: UInt64(i)), try block(900)) }
        #expect(cache.usage <= cache.capacity)
        #expect(cache.entryCount < 500)
        // A recently used entry survives pressure on its shard; the oldest go first.
        let key = BlockCache.Key(file: 9, offset: 0)
        cache.insert(key, try block(100))
        for i in 0..<2000 {
            _ = cache.get(key)
            cache.insert(.init(file: 2, offset: UInt64(i)), try block(300))
        }
        #expect(cache.get(key) != nil)
        #expect(cache.get(.init(file: 2, offset: 0)) == nil)
        #expect(cache.get(.init(file: 2, offset: 1999)) != nil)
        #expect(cache.hits.load(ordering: .relaxed) > 0)
        cache.clear()
        #expect(cache.usage == 0)
        #expect(cache.get(key) == nil)
    }

    /// The cache's hash table (open addressing, deletion by backward shift) against a model:
    /// random keys inserted, replaced and evicted; every hit returns the block stored under
    /// its key, and everything the model still holds is found.
    @Test func blockCacheIndexMatchesAModel() throws {
        var b = BlockBuilder(restartInterval: 16)
        b.add(bytes("k"), [UInt8](repeating: 1, count: 10))
        let contents = b.finish()
        let cache = BlockCache(capacityBytes: 16 * 40 * (contents.count + 64))  // 40 blocks per shard
        var rng = SystemRandomNumberGenerator()
        var stored: [BlockCache.Key: Block] = [:]
        for _ in 0..<20000 {
            // Few distinct files and clustered offsets: many keys share home slots.
            let key = BlockCache.Key(
                file: UInt64.random(in: 1...3, using: &rng), offset: UInt64.random(in: 0..<600, using: &rng) * 4096)
            if Bool.random(using: &rng) {
                let block = try Block(contents, path: "mem", offset: 0)
                cache.insert(key, block)
                stored[key] = block
            } else if let hit = cache.get(key) {
                #expect(hit === stored[key], "a hit returned another key's block")
            }
        }
        #expect(cache.entryCount > 0 && cache.entryCount <= 16 * 40)
        var found = 0
        for (key, block) in stored {
            if let hit = cache.get(key) {
                #expect(hit === block)
                found += 1
            }
        }
        #expect(found == cache.entryCount, "every cached entry is reachable through the index")
        cache.clear()
        #expect(cache.entryCount == 0)
        for key in stored.keys { #expect(cache.get(key) == nil) }
    }

    @Test func mergingIteratorOrdersAcrossSources() throws {
        let a = Memtable(logNumber: 1)
        let b = Memtable(logNumber: 2)
        var expected: [[UInt8]] = []
        for i in 0..<300 {
            let target = i % 3 == 0 ? a : b
            let key = bytes(String(format: "k%04d", i % 150))
            let ik = makeInternalKey(key, UInt64(i + 1), .value)
            ik.withUnsafeBytes { _ in }
            key.withUnsafeBytes { k in
                bytes("v\(i)").withUnsafeBytes { v in target.add(UInt64(i + 1), .value, key: k, value: v) }
            }
            expected.append(ik)
        }
        expected.sort { compareInternalKeys($0, $1) < 0 }
        let m = MergingIterator([Memtable.Iterator(a), Memtable.Iterator(b)])
        try m.seekToFirst()
        var got: [[UInt8]] = []
        while m.isValid {
            got.append(m.key)
            try m.next()
        }
        #expect(got == expected)
        // Newest version of a key comes first.
        try m.seek(makeInternalKey(bytes("k0010"), maxSequenceNumber, .value))
        #expect(m.key == makeInternalKey(bytes("k0010"), 161, .value))
        // Backwards: the exact reverse order.
        try m.seekToLast()
        var back: [[UInt8]] = []
        while m.isValid {
            back.append(m.key)
            try m.prev()
        }
        #expect(back == expected.reversed())
        // Switching direction in the middle lands on the neighbours.
        try m.seek(expected[100])
        try m.prev()
        #expect(m.key == expected[99])
        try m.next()
        #expect(m.key == expected[100])
        try m.next()
        #expect(m.key == expected[101])
    }

    /// Tables, their blocks and a level iterator walk backwards through the same entries.
    @Test func reverseIterationOverTablesAndLevels() throws {
        let dir = TempDir()
        var o = Options()
        o.blockSize = 512
        let cache = TableCache(
            directory: dir.path, capacity: 10, blockCache: BlockCache(capacityBytes: 1 << 20),
            counters: EngineCounters(), mmapReads: true, layer: PosixFileLayer.shared)
        var files: [FileMetaData] = []
        var expected: [[UInt8]] = []
        let deleter = FileDeleter(
            directory: dir.path, tableCache: cache, blobReaders: BlobReaderCache(directory: dir.path, capacity: 4, layer: PosixFileLayer.shared),
            counters: EngineCounters())
        for t in 0..<3 {
            let builder = try TableBuilder(path: FileNames.table(dir.path, UInt64(t + 1)), options: o)
            for i in 0..<700 {
                let k = makeInternalKey(bytes(String(format: "key%06d", t * 1000 + i)), 5, .value)
                try builder.add(k, bytes("value-\(i)")[...])
                expected.append(k)
            }
            let size = try builder.finish()
            files.append(
                FileMetaData(
                    number: UInt64(t + 1), size: size, smallest: builder.smallest, largest: builder.largest,
                    deleter: deleter))
        }
        let level = LevelIterator(files: files, tableCache: cache, fillCache: true)
        try level.seekToLast()
        var back: [[UInt8]] = []
        while level.isValid {
            back.append(level.key)
            try level.prev()
        }
        #expect(back == expected.reversed())
        let table = try cache.table(2).makeIterator()
        try table.seek(expected[900])
        try table.prev()
        #expect(table.key == expected[899])
        try table.prev()
        #expect(table.key == expected[898])
    }
}
