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
    let hits = Atomic<Int>(0)
    let misses = Atomic<Int>(0)

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
    /// access moves two indices instead of allocating.
    final class Shard: Sendable {
        struct State {
            var index: [Key: Int] = [:]
            var keys: [Key] = [Key(file: 0, offset: 0)]
            var blocks: [Block?] = [nil]
            var prev: [Int] = [0]
            var next: [Int] = [0]
            var free: [Int] = []
            var usage = 0
            let capacity: Int

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
                index[keys[n]] = nil
                blocks[n] = nil
                free.append(n)
            }
        }

        private let state: Locked<State>

        init(capacity: Int) { state = Locked(State(capacity: capacity)) }

        func get(_ key: Key) -> Block? {
            state.withLock { s in
                guard let n = s.index[key] else { return nil }
                s.unlink(n)
                s.pushFront(n)
                return s.blocks[n]
            }
        }

        func insert(_ key: Key, _ block: Block) {
            state.withLock { s in
                if let n = s.index[key] { s.remove(n) }
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
                s.index[key] = n
                s.pushFront(n)
                s.usage += block.charge
                while s.usage > s.capacity, s.prev[0] != 0 { s.remove(s.prev[0]) }
            }
        }

        var usage: Int { state.withLock { $0.usage } }
        var count: Int { state.withLock { $0.index.count } }

        func clear() {
            state.withLock { s in
                while s.next[0] != 0 { s.remove(s.next[0]) }
            }
        }
    }
}
