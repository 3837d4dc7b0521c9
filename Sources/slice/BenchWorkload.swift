import Foundation

/// The operation sequences of `slice bench`, defined so that another harness replays them
/// exactly: `Benchmarks/peers/peer_bench.c` implements the same definitions for LevelDB,
/// RocksDB and LMDB, and `Benchmarks/compare.sh` runs both.
///
/// - Keys are `keySize` ASCII digits of `i`, 0 ≤ i < num (`%016d` by default); a missing key is
///   a key with its last digit replaced by `x`, so it falls between existing keys.
/// - Values are `valueSize` bytes sliced from a 1 MiB pool at a random offset per put
///   (random bytes; with `--compression_ratio` r, compressible to about r, see `valuePool`).
/// - Random numbers: splitmix64. A workload's generator is seeded with FNV-1a-64 of its name
///   plus `thread × 0x9E3779B97F4A7C15`; value offsets come from a second generator seeded
///   with that seed XOR `valueSalt`.
/// - `fillseq`/`deleteseq` take every key once in order, `fillrandom`/`deleterandom` every key
///   once in a Fisher–Yates permutation (the name's generator, thread 0); T threads each take
///   one of T contiguous parts. `overwrite`, `readrandom`, `readmissing`, `seekrandom` and the
///   YCSB mixes draw uniform (or zipfian) keys and split their operation count over the threads.
/// - `seekrandom`: a fresh iterator, seek to the key, read it and 10 more entries.
/// - `ycsb_a`/`ycsb_b`/`ycsb_c`: 50/95/100% gets, the rest blind puts; the key is YCSB's
///   zipfian rank (θ 0.99 over `num` items) scrambled through FNV-1a-64 of its 8
///   little-endian bytes, modulo `num`. Each operation draws the read/put choice first, then
///   the rank.
enum BenchWorkload {
    static let poolSize = 1 << 20
    static let golden: UInt64 = 0x9E37_79B9_7F4A_7C15
    static let valueSalt: UInt64 = 0x5641_4C55_4553  // "VALUES"
    /// Entries `seekrandom` reads per seek (the one found and 10 more).
    static let seekEntries = 11

    @inline(__always)
    static func splitmix(_ s: inout UInt64) -> UInt64 {
        s &+= golden
        var z = s
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    static func fnv1a(_ bytes: some Sequence<UInt8>) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in bytes {
            h ^= UInt64(b)
            h &*= 0x100_0000_01B3
        }
        return h
    }

    static func seed(_ name: String, thread: Int) -> UInt64 {
        fnv1a(name.utf8) &+ UInt64(thread) &* golden
    }

    /// A uniform double in [0, 1) (53 bits).
    @inline(__always)
    static func unit(_ s: inout UInt64) -> Double { Double(splitmix(&s) >> 11) * (1.0 / 9_007_199_254_740_992.0) }

    /// The 1 MiB value pool: splitmix64 seeded with FNV-1a of "pool", 8 bytes per draw. With
    /// `compressionRatio` r < 1 (db_bench's `--compression_ratio`), each 100-byte piece keeps
    /// its first max(1, ⌊100·r⌋) random bytes and repeats them to the piece's end, so a
    /// compressor shrinks values to about r of their size.
    static func valuePool(compressionRatio: Double = 1) -> [UInt8] {
        var s = fnv1a("pool".utf8)
        var pool = [UInt8](repeating: 0, count: poolSize)
        pool.withUnsafeMutableBytes { b in
            for i in stride(from: 0, to: poolSize, by: 8) {
                b.storeBytes(of: splitmix(&s).littleEndian, toByteOffset: i, as: UInt64.self)
            }
        }
        if compressionRatio < 1 {
            let distinct = max(1, Int(100 * compressionRatio))
            for i in 0..<poolSize {
                let o = i % 100
                if o >= distinct { pool[i] = pool[i - o + o % distinct] }
            }
        }
        return pool
    }

    /// Every index in 0..<count once, in the order the named workload takes them.
    static func permutation(_ name: String, count: Int) -> [Int] {
        var p = Array(0..<count)
        var s = seed(name, thread: 0)
        var i = count - 1
        while i > 0 {
            let j = Int(splitmix(&s) % UInt64(i + 1))
            p.swapAt(i, j)
            i -= 1
        }
        return p
    }

    /// Thread `t`'s share of `total` operations (or sequence positions) among `threads`.
    static func part(_ total: Int, thread t: Int, of threads: Int) -> Range<Int> {
        (total * t / threads)..<(total * (t + 1) / threads)
    }

    /// The key index a zipfian `rank` stands for: FNV-1a-64 of the rank's 8 little-endian bytes,
    /// modulo `num` (YCSB's `ScrambledZipfianGenerator`), so the hot keys are spread over the
    /// key space instead of being its first ones.
    @inline(__always)
    static func scrambled(_ rank: UInt64, num: Int) -> Int {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        var v = rank
        for _ in 0..<8 {
            h ^= v & 0xff
            h &*= 0x100_0000_01B3
            v >>= 8
        }
        return Int(h % UInt64(num))
    }

    /// Percent of gets in a YCSB mix; nil for other names.
    static func readPercent(_ name: String) -> Int? {
        switch name {
        case "ycsb_a": 50
        case "ycsb_b": 95
        case "ycsb_c": 100
        default: nil
        }
    }
}
