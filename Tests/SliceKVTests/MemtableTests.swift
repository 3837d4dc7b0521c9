import Foundation
import Synchronization
import Testing

@testable import SliceKV

@Suite struct MemtableTests {
    /// Random keys (short, long, sharing prefixes, empty) and versions against a sorted model:
    /// forward and backward iteration, seeks, and gets at several sequence numbers.
    @Test func matchesASortedModel() throws {
        var rng = SystemRandomNumberGenerator()
        let table = Memtable(logNumber: 1)
        var model: [([UInt8], [UInt8])] = []  // (internal key, value)
        var seq: UInt64 = 0
        for i in 0..<5000 {
            let length = [0, 1, 7, 8, 9, 16, 40, 3000][i % 8]
            let key = (0..<length).map { _ in UInt8.random(in: 0...3, using: &rng) }
            let value = (0..<Int.random(in: 0...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            seq += 1
            let kind: ValueKind = i % 5 == 0 ? .deletion : .value
            key.withUnsafeBytes { k in value.withUnsafeBytes { v in table.add(seq, kind, key: k, value: v) } }
            model.append((makeInternalKey(key, seq, kind), value))
        }
        model.sort { compareInternalKeys($0.0, $1.0) < 0 }
        #expect(table.count == 5000)

        let it = Memtable.Iterator(table)
        it.seekToFirst()
        var n = 0
        while it.isValid {
            #expect(it.key == model[n].0)
            #expect(it.value == model[n].1)
            n += 1
            it.next()
        }
        #expect(n == model.count)
        it.seekToLast()
        n = model.count
        while it.isValid {
            n -= 1
            #expect(it.key == model[n].0)
            it.prev()
        }
        #expect(n == 0)
        // Directions mixed at random: `prev` hands out buffered predecessors, `next` and
        // seeks must drop them.
        var at = model.count / 2
        it.seek(model[at].0)
        for _ in 0..<3000 {
            if Bool.random(using: &rng) && at > 0 {
                it.prev()
                at -= 1
            } else if at < model.count - 1 {
                it.next()
                at += 1
            }
            #expect(it.isValid && it.key == model[at].0)
        }

        for _ in 0..<500 {
            let probe = model[Int.random(in: 0..<model.count, using: &rng)].0
            it.seek(probe)
            #expect(it.isValid && it.key == probe)
            // A get at the entry's sequence number sees this version or a newer one below it.
            let userKey = Array(probe.dropLast(8))
            let sequence = probe.withUnsafeBytes { ParsedInternalKey($0)!.sequence }
            let newest = model.first { e in
                e.0.withUnsafeBytes { k in
                    let p = ParsedInternalKey(k)!
                    return userKey.withUnsafeBytes { compareBytes(p.userKey, $0) == 0 } && p.sequence <= sequence
                }
            }!
            switch table.get(makeInternalKey(userKey, sequence, .forSeek)) {
            case .found(let v): #expect(newest.0.dropLast(8).count == userKey.count && v == newest.1)
            case .deleted: #expect(newest.0[newest.0.count - 8] == ValueKind.deletion.rawValue)
            default: Issue.record("version of a present key not found")
            }
        }
        #expect(
            {
                if case .absent = table.get(makeInternalKey([9, 9, 9], maxSequenceNumber, .forSeek)) { return true }
                return false
            }())
    }

    /// Readers iterate and get without locks while the single writer inserts: each sees a
    /// sorted sequence and every key inserted before it started (run under TSan in CI's
    /// sanitizer pass).
    @Test func readersRunAlongsideTheWriter() async throws {
        let table = Memtable(logNumber: 1)
        final class Counter: Sendable { let value = Atomic<Int>(0) }
        let inserted = Counter()
        let total = 20000
        @Sendable func key(_ i: Int) -> [UInt8] { bytes(String(format: "k%08d", (i &* 7919) % total)) }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for i in 0..<total {
                    let k = key(i)
                    k.withUnsafeBytes { kb in table.add(UInt64(i + 1), .value, key: kb, value: kb) }
                    inserted.value.store(i + 1, ordering: .releasing)
                }
            }
            for _ in 0..<2 {
                group.addTask {
                    while inserted.value.load(ordering: .acquiring) < total {
                        let before = inserted.value.load(ordering: .acquiring)
                        let it = Memtable.Iterator(table)
                        it.seekToFirst()
                        var count = 0
                        var previous: [UInt8] = []
                        while it.isValid {
                            let k = it.key
                            if count > 0 && compareInternalKeys(previous, k) >= 0 { Issue.record("out of order") }
                            previous = k
                            count += 1
                            it.next()
                        }
                        if count < before { Issue.record("iterator missed entries: \(count) < \(before)") }
                        if before > 0 {
                            let probe = key(before - 1)
                            guard case .found(let v) = table.get(makeInternalKey(probe, maxSequenceNumber, .forSeek)),
                                v == probe
                            else {
                                Issue.record("inserted key not found")
                                return
                            }
                        }
                    }
                }
            }
        }
        #expect(table.count == total)
    }
}
