import Synchronization

/// A sharded LRU cache of parsed blocks, sized in bytes.
///
/// Keys are `(file number, block offset)`; file numbers are never reused, so entries of deleted
/// files simply age out. Each of the 16 shards is an independent LRU under its own `Mutex`, so
/// readers on different shards never contend. Counters are atomics read by `stats`.
package final class BlockCache: Sendable {
    package struct Key: Hashable {
        let file: UInt64
        let offset: UInt64

        package init(file: UInt64, offset: UInt64) {
            self.file = file
            self.offset = offset
        }
    }

    private static let shardBits = 4
    private let shards: [Shard]
    let capacity: Int
    let hits = StripedCounter()
    let misses = StripedCounter()

    package init(capacityBytes: Int) {
        capacity = capacityBytes
        let per = max(1, capacityBytes >> BlockCache.shardBits)
        shards = (0..<(1 << BlockCache.shardBits)).map { _ in Shard(capacity: per) }
    }

    @inline(__always)
    private func shard(_ key: Key) -> Shard {
        var h = key.file &* 0x9E37_79B9_7F4A_7C15 ^ key.offset &* 0xC2B2_AE3D_27D4_EB4F
        h ^= h >> 29
        return shards[Int(h & UInt64((1 << BlockCache.shardBits) - 1))]
    }

    package func get(_ key: Key) -> Block? {
        let block = shard(key).get(key)
        if block != nil {
            hits.add(1, ordering: .relaxed)
        } else {
            misses.add(1, ordering: .relaxed)
        }
        return block
    }

    package func insert(_ key: Key, _ block: Block) {
        guard capacity > 0 else { return }
        shard(key).insert(key, block)
    }

    /// Bytes currently charged.
    var usage: Int { shards.reduce(0) { $0 + $1.usage } }

    var entryCount: Int { shards.reduce(0) { $0 + $1.count } }

    func clear() { for s in shards { s.clear() } }

    /// One LRU list: nodes live in arrays linked by index (node 0 is the sentinel), so an
    /// access moves two indices instead of allocating. The key -> node index is a small
    /// open-addressing table with a multiplicative hash, hand-written because `Dictionary`'s
    /// SipHash measured as a fifth of a cache operation here.
    final class Shard: Sendable {
        struct State {
            /// Node index per slot, -1 when empty; linear probing, a power-of-two size kept
            /// under 70% full; deletion shifts later entries back (no tombstones).
            var slots = [Int32](repeating: -1, count: 64)
            var entries = 0
            var keys: [Key] = [Key(file: 0, offset: 0)]
            var blocks: [Block?] = [nil]
            var prev: [Int] = [0]
            var next: [Int] = [0]
            var free: [Int] = []
            var usage = 0
            let capacity: Int

            @inline(__always)
            func home(_ key: Key) -> Int {
                let h = (key.file &* 0x9E37_79B9_7F4A_7C15) ^ (key.offset &* 0xC2B2_AE3D_27D4_EB4F)
                return Int(truncatingIfNeeded: (h ^ (h >> 32)) & UInt64(slots.count - 1))
            }

            /// The slot holding `key`, or nil.
            @inline(__always)
            func slot(of key: Key) -> Int? {
                var i = home(key)
                while true {
                    let n = Int(slots[i])
                    if n < 0 { return nil }
                    if keys[n] == key { return i }
                    i = (i + 1) & (slots.count - 1)
                }
            }

            func find(_ key: Key) -> Int? { slot(of: key).map { Int(slots[$0]) } }

            mutating func add(_ key: Key, _ n: Int) {
                if (entries + 1) * 10 > slots.count * 7 {
                    let old = slots
                    slots = [Int32](repeating: -1, count: old.count * 2)
                    for m in old where m >= 0 { place(keys[Int(m)], Int(m)) }
                }
                place(key, n)
                entries += 1
            }

            private mutating func place(_ key: Key, _ n: Int) {
                var i = home(key)
                while slots[i] >= 0 { i = (i + 1) & (slots.count - 1) }
                slots[i] = Int32(n)
            }

            /// Removes `key`'s slot and moves back any entry that probed past it.
            mutating func erase(_ key: Key) {
                guard var hole = slot(of: key) else { return }
                let mask = slots.count - 1
                var i = hole
                while true {
                    i = (i + 1) & mask
                    let n = Int(slots[i])
                    if n < 0 { break }
                    let h = home(keys[n])
                    // Move the entry into the hole unless its home lies cyclically in (hole, i].
                    let stays = hole <= i ? (hole < h && h <= i) : (hole < h || h <= i)
                    if !stays {
                        slots[hole] = slots[i]
                        hole = i
                    }
                }
                slots[hole] = -1
                entries -= 1
            }

            mutating func unlink(_ n: Int) {
                next[prev[n]] = next[n]
                prev[next[n]] = prev[n]
            }

            mutating func pushFront(_ n: Int) {
                prev[n] = 0
                next[n] = next[0]
                prev[next[0]] = n
                next[0] = n
            }

            mutating func remove(_ n: Int) {
                unlink(n)
                usage -= blocks[n]!.charge
                erase(keys[n])
                blocks[n] = nil
                free.append(n)
            }
        }

        private let state: Locked<State>

        init(capacity: Int) { state = Locked(State(capacity: capacity)) }

        func get(_ key: Key) -> Block? {
            state.withLock { s in
                guard let n = s.find(key) else { return nil }
                s.unlink(n)
                s.pushFront(n)
                return s.blocks[n]
            }
        }

        func insert(_ key: Key, _ block: Block) {
            state.withLock { s in
                if let n = s.find(key) { s.remove(n) }
                guard block.charge <= s.capacity else { return }
                let n: Int
                if let f = s.free.popLast() {
                    n = f
                    s.keys[n] = key
                    s.blocks[n] = block
                } else {
                    n = s.keys.count
                    s.keys.append(key)
                    s.blocks.append(block)
                    s.prev.append(0)
                    s.next.append(0)
                }
                s.add(key, n)
                s.pushFront(n)
                s.usage += block.charge
                while s.usage > s.capacity, s.prev[0] != 0 { s.remove(s.prev[0]) }
            }
        }

        var usage: Int { state.withLock { $0.usage } }
        var count: Int { state.withLock { $0.entries } }

        func clear() {
            state.withLock { s in
                while s.next[0] != 0 { s.remove(s.next[0]) }
            }
        }
    }
}
