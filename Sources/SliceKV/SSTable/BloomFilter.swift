/// The classic bloom filter over the user keys of one table (RocksDB's "full filter" shape: one
/// filter per table, so a negative answer skips the table without touching the index). Tables
/// are now written with `BlockedBloomFilter`; this one is read in tables written before it, and
/// its `hash` is the key hash every filter (and the memtable's) uses.
///
/// ```
/// filter := bits[ceil(n * bitsPerKey / 8)]  probes:uint8
/// ```
/// Probing uses double hashing over a 64-bit MurmurHash64A of the key: probe i tests bit
/// `(h1 + i * h2) mod m`. With 10 bits a key and 7 probes the false-positive rate is about 0.8%.
package enum BloomFilter {
    /// Number of probes minimising false positives for `bitsPerKey` (k = ln 2 * m/n).
    static func probes(bitsPerKey: Int) -> Int {
        max(1, min(30, Int((Double(bitsPerKey) * 0.69).rounded())))
    }

    /// Theoretical false-positive rate, for tests and stats.
    static func expectedFalsePositiveRate(bitsPerKey: Int) -> Double {
        let k = Double(probes(bitsPerKey: bitsPerKey))
        return pow(1 - exp(-k / Double(bitsPerKey)), k)
    }

    package static func build(hashes: [UInt64], bitsPerKey: Int) -> [UInt8] {
        let k = probes(bitsPerKey: bitsPerKey)
        let bits = max(64, hashes.count * bitsPerKey)
        let bytes = (bits + 7) / 8
        let m = UInt64(bytes * 8)
        var filter = [UInt8](repeating: 0, count: bytes + 1)
        filter.withUnsafeMutableBufferPointer { f in
            for h in hashes {
                var h1 = h & 0xffff_ffff
                let h2 = (h >> 32) | 1
                for _ in 0..<k {
                    let bit = h1 % m
                    f[Int(bit >> 3)] |= 1 << UInt8(bit & 7)
                    h1 &+= h2
                }
            }
            f[bytes] = UInt8(k)
        }
        return filter
    }

    /// False means the key is certainly absent.
    @inline(__always)
    package static func mayContain(_ filter: [UInt8], hash h: UInt64) -> Bool {
        guard filter.count >= 2 else { return true }
        return filter.withUnsafeBufferPointer { f in
            let bytes = f.count - 1
            let k = Int(f[bytes])
            guard k >= 1, k <= 30 else { return true }  // unknown encoding: do not filter
            let m = UInt64(bytes * 8)
            var h1 = h & 0xffff_ffff
            let h2 = (h >> 32) | 1
            for _ in 0..<k {
                let bit = h1 % m
                if f[Int(bit >> 3)] & (1 << UInt8(bit & 7)) == 0 { return false }
                h1 &+= h2
            }
            return true
        }
    }

    /// MurmurHash64A (Austin Appleby, public domain), seed fixed: on disk, do not change.
    @inline(__always)
    package static func hash(_ key: UnsafeRawBufferPointer) -> UInt64 {
        let m: UInt64 = 0xc6a4_a793_5bd1_e995
        let r: UInt64 = 47
        let seed: UInt64 = 0x5eed_51ce
        var h = seed ^ (UInt64(key.count) &* m)
        var p = 0
        while p + 8 <= key.count {
            var k = UInt64(littleEndian: key.loadUnaligned(fromByteOffset: p, as: UInt64.self))
            k &*= m
            k ^= k >> r
            k &*= m
            h ^= k
            h &*= m
            p += 8
        }
        let rest = key.count - p
        if rest > 0 {
            var t: UInt64 = 0
            for i in 0..<rest { t |= UInt64(key[p + i]) << (8 * UInt64(i)) }
            h ^= t
            h &*= m
        }
        h ^= h >> r
        h &*= m
        h ^= h >> r
        return h
    }

    static func hash(_ key: [UInt8]) -> UInt64 { key.withUnsafeBytes { hash($0) } }
}

#if canImport(Glibc)
    import Glibc
#endif
