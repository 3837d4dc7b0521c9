// Micro-benchmarks of SliceKV's hot components (ordo-one/package-benchmark), with allocation
// counts. Run: `swift package --allow-writing-to-package-directory benchmark` (release build);
// see BENCHMARKS.md. Components are reached through `package` access: same package, no
// public API widened for this.
import Benchmark
import Foundation
import SliceKV

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        maxDuration: .seconds(2), maxIterations: 1_000_000)

    func pattern(_ n: Int, seed: UInt64 = 1) -> [UInt8] {
        var x = seed | 1
        return (0..<n).map { _ in
            x ^= x << 13
            x ^= x >> 7
            x ^= x << 17
            return UInt8(truncatingIfNeeded: x)
        }
    }
    func key(_ i: Int) -> [UInt8] { Array(String(format: "%016d", i).utf8) }

    // CRC32C (SSE4.2 when present).
    for size in [4096, 1 << 20] {
        let data = pattern(size)
        Benchmark("CRC32C \(size == 4096 ? "4 KiB" : "1 MiB")", configuration: .init(scalingFactor: .kilo)) { b in
            data.withUnsafeBytes { buf in
                for _ in b.scaledIterations { blackHole(CRC32C.checksum(buf)) }
            }
        }
    }

    // Bloom filter: building over 10,000 keys, and queries (half present).
    let bloomKeys = (0..<10_000).map { key($0) }
    let hashes = bloomKeys.map { k in k.withUnsafeBytes { BloomFilter.hash($0) } }
    Benchmark("Bloom build 10k keys, 10 bits") { b in
        for _ in b.scaledIterations { blackHole(BloomFilter.build(hashes: hashes, bitsPerKey: 10)) }
    }
    let filter = BloomFilter.build(hashes: hashes, bitsPerKey: 10)
    let probes = (0..<20_000).map { key($0).withUnsafeBytes { BloomFilter.hash($0) } }
    Benchmark("Bloom hash+query", configuration: .init(scalingFactor: .kilo)) { b in
        var i = 0
        for _ in b.scaledIterations {
            blackHole(BloomFilter.mayContain(filter, hash: probes[i]))
            i = i == probes.count - 1 ? 0 : i + 1
        }
    }

    // Block: building a 4 KiB block of 16-byte keys / 100-byte values, and seeking in it.
    let value = pattern(100)
    let blockKeys = (0..<34).map { makeInternalKey(key($0 * 7), 100, .value) }
    Benchmark("Block build (34 entries, ~4 KiB)") { b in
        for _ in b.scaledIterations {
            var builder = BlockBuilder(restartInterval: 16)
            for k in blockKeys { k.withUnsafeBytes { kb in value.withUnsafeBytes { builder.add(kb, $0) } } }
            blackHole(builder.finish())
        }
    }
    var builder = BlockBuilder(restartInterval: 16)
    for k in blockKeys { k.withUnsafeBytes { kb in value.withUnsafeBytes { builder.add(kb, $0) } } }
    let block = try! Block(builder.finish(), path: "bench", offset: 0)
    Benchmark("Block seek", configuration: .init(scalingFactor: .kilo)) { b in
        var i = 0
        for _ in b.scaledIterations {
            let it = block.makeIterator(path: "bench")
            try it.seek(blockKeys[i])
            blackHole(it.isValid)
            i = i == blockKeys.count - 1 ? 0 : i + 1
        }
    }

    // Memtable: inserting 100,000 random keys; point reads in a 100,000-entry table.
    let randomKeys = (0..<100_000).map { key(Int(UInt32(truncatingIfNeeded: $0 &* 2_654_435_761))) }
    Benchmark("Memtable insert 100k", configuration: .init(maxIterations: 50)) { b in
        for _ in b.scaledIterations {
            let m = Memtable(logNumber: 0)
            for (i, k) in randomKeys.enumerated() {
                k.withUnsafeBytes { kb in value.withUnsafeBytes { m.add(UInt64(i + 1), .value, key: kb, value: $0) } }
            }
            blackHole(m)
        }
    }
    let table = Memtable(logNumber: 0)
    for (i, k) in randomKeys.enumerated() {
        k.withUnsafeBytes { kb in value.withUnsafeBytes { table.add(UInt64(i + 1), .value, key: kb, value: $0) } }
    }
    let lookups = randomKeys.map { makeInternalKey($0, 1 << 40, .forSeek) }
    Benchmark("Memtable get (100k entries)", configuration: .init(scalingFactor: .kilo)) { b in
        var i = 0
        for _ in b.scaledIterations {
            blackHole(table.get(lookups[i]))
            i = i == lookups.count - 1 ? 0 : i + 1
        }
    }

    // Block cache hit path (16 shards, 64 MiB, 10,000 cached blocks).
    let cache = BlockCache(capacityBytes: 64 << 20)
    for i in 0..<10_000 { cache.insert(.init(file: 1, offset: UInt64(i) * 4096), block) }
    Benchmark("BlockCache hit", configuration: .init(scalingFactor: .kilo)) { b in
        var i: UInt64 = 0
        for _ in b.scaledIterations {
            blackHole(cache.get(.init(file: 1, offset: i * 4096)))
            i = i == 9_999 ? 0 : i + 1
        }
    }

    // WAL append of a 128-byte batch (no sync: the cost of framing, CRC and write(2)).
    Benchmark("WAL append 128 B", configuration: .init(scalingFactor: .kilo)) { b in
        let path = NSTemporaryDirectory() + "slice-micro-\(getpid()).log"
        let writer = LogWriter(file: try PosixFileLayer.shared.create(path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let payload = pattern(128)
        b.startMeasurement()
        for _ in b.scaledIterations { try writer.add(payload) }
        b.stopMeasurement()
    }
}
