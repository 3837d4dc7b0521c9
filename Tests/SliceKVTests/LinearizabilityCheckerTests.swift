import Linearizability
import Testing

/// The checker itself: it must accept linearizable histories, including ones with overlapping
/// and unfinished operations, and reject the classic anomalies. Times are small integers.
@Suite struct LinearizabilityCheckerTests {
    // MARK: Histories by hand

    static func put(_ c: Int, _ k: String, _ v: String, _ a: UInt64, _ b: UInt64?, deadline: UInt64? = nil)
        -> OperationRecord
    {
        OperationRecord(client: c, action: .put(key: k, value: v), invoke: a, completion: done(b, deadline))
    }

    static func delete(_ c: Int, _ k: String, _ a: UInt64, _ b: UInt64?, deadline: UInt64? = nil) -> OperationRecord {
        OperationRecord(client: c, action: .delete(key: k), invoke: a, completion: done(b, deadline))
    }

    static func get(_ c: Int, _ k: String, _ seen: String?, _ a: UInt64, _ b: UInt64) -> OperationRecord {
        OperationRecord(client: c, action: .get(key: k), invoke: a, completion: .returned(at: b, observed: [seen]))
    }

    static func batch(_ c: Int, _ w: [(String, String?)], _ a: UInt64, _ b: UInt64?, deadline: UInt64? = nil)
        -> OperationRecord
    {
        OperationRecord(
            client: c, action: .batch(w.map { OperationRecord.Write(key: $0.0, value: $0.1) }), invoke: a,
            completion: done(b, deadline))
    }

    static func read(_ c: Int, _ keys: [String], _ seen: [String?], _ a: UInt64, _ b: UInt64) -> OperationRecord {
        OperationRecord(client: c, action: .read(keys: keys), invoke: a, completion: .returned(at: b, observed: seen))
    }

    /// `b` nil: never returned, with `deadline` as its bound.
    static func done(_ b: UInt64?, _ deadline: UInt64?) -> OperationRecord.Completion {
        b.map { .returned(at: $0, observed: []) } ?? .unknown(deadline: deadline)
    }

    static let checker = LinearizabilityChecker()

    static let linearizable: [(String, [OperationRecord])] = [
        (
            "sequential put, get, delete, get",
            [put(0, "x", "1", 0, 1), get(0, "x", "1", 2, 3), delete(0, "x", 4, 5), get(0, "x", nil, 6, 7)]
        ),
        (
            "reads during a write may see either value, once the new one the old one never again",
            [
                put(0, "x", "1", 0, 10), put(1, "x", "2", 20, 40), get(2, "x", "1", 21, 25), get(3, "x", "2", 22, 30),
                get(2, "x", "2", 26, 28), get(3, "x", "2", 41, 50),
            ]
        ),
        (
            "overlapping writes take effect in either order",
            [put(0, "x", "1", 0, 10), put(1, "x", "2", 5, 15), get(2, "x", "1", 16, 20), get(3, "x", "1", 21, 22)]
        ),
        (
            "a read that overlaps a write and sees it before the write returns",
            [put(0, "x", "1", 0, 100), get(1, "x", "1", 10, 20), get(2, "x", "1", 30, 40)]
        ),
        (
            "a batch is seen whole, before or after",
            [
                batch(0, [("x", "1"), ("y", "1")], 0, 10), read(1, ["x", "y"], [nil, nil], 1, 2),
                read(2, ["x", "y"], ["1", "1"], 5, 15), batch(0, [("x", nil), ("y", "2")], 20, 30),
                read(1, ["y", "x"], ["2", nil], 25, 35),
            ]
        ),
        (
            "an unfinished write may take effect late, with no deadline",
            [put(0, "x", "1", 0, nil), get(1, "x", nil, 5, 6), get(1, "x", "1", 100, 101)]
        ),
        (
            "an unfinished write may never take effect",
            [put(0, "x", "1", 0, 1), put(0, "x", "2", 2, nil, deadline: 5), get(1, "x", "1", 6, 7)]
        ),
        (
            "or take effect before its deadline",
            [put(0, "x", "1", 0, 1), put(0, "x", "2", 2, nil, deadline: 5), get(1, "x", "2", 6, 7)]
        ),
        (
            "keys are independent",
            [put(0, "x", "1", 0, 10), put(1, "y", "1", 0, 10), get(2, "y", "1", 1, 2), get(2, "x", nil, 3, 4)]
        ),
        ("equal times count as overlapping", [put(0, "x", "1", 0, 5), get(1, "x", nil, 5, 6)]),
    ]

    static let notLinearizable: [(String, [OperationRecord], last: Int)] = [
        (
            "stale read after a completed write",
            [put(0, "x", "1", 0, 1), put(0, "x", "2", 2, 3), get(1, "x", "1", 4, 5)], 2
        ),
        ("a read of a value never written", [put(0, "x", "1", 0, 1), get(1, "x", "9", 2, 3)], 1),
        ("a read of a deleted value", [put(0, "x", "1", 0, 1), delete(0, "x", 2, 3), get(1, "x", "1", 4, 5)], 2),
        (
            "two reads in real-time order see the new value, then the old one",
            [put(0, "x", "1", 0, 1), put(1, "x", "2", 2, 10), get(2, "x", "2", 3, 4), get(3, "x", "1", 5, 6)], 3
        ),
        (
            "a durable write acknowledged before a crash is lost after restart",
            [put(0, "x", "1", 0, 1), put(0, "x", "2", 2, nil, deadline: 5), get(9, "x", nil, 6, 7)], 2
        ),
        (
            "an unfinished write appears only after the restart that bounds it",
            [put(0, "x", "1", 0, nil, deadline: 5), get(9, "x", nil, 6, 7), get(9, "x", "1", 8, 9)], 2
        ),
        (
            "a torn batch",
            [batch(0, [("x", "1"), ("y", "1")], 0, 10), read(1, ["x", "y"], ["1", nil], 5, 15)], 1
        ),
        (
            "half a batch seen by two single-key reads",
            [batch(0, [("x", "1"), ("y", "1")], 0, 10), get(1, "x", "1", 2, 3), get(1, "y", nil, 4, 5)], 2
        ),
        (
            "the failure among many good operations",
            (0..<40).flatMap { i -> [OperationRecord] in
                let t = UInt64(i) * 10
                return [put(0, "x", "\(i)", t, t + 5), get(1, "x", i == 30 ? "\(i - 2)" : "\(i)", t + 6, t + 8)]
            }, 61
        ),
    ]

    @Test(arguments: 0..<linearizable.count) func acceptsLinearizableHistory(_ i: Int) {
        let (name, history) = Self.linearizable[i]
        let r = Self.checker.check(history)
        #expect(r.isLinearizable, "\(name): \(r)")
        #expect(SessionChecker.check(history).isEmpty, "\(name): \(SessionChecker.check(history))")
    }

    @Test(arguments: 0..<notLinearizable.count) func rejectsNonLinearizableHistory(_ i: Int) throws {
        let (name, history, last) = Self.notLinearizable[i]
        let r = Self.checker.check(history)
        let c = try #require(r.counterexample, "\(name): \(r)")
        // The shortest failing prefix ends with the operation that makes it fail.
        #expect(c.last == history[last], "\(name): \(c)")
        #expect(Set(history[last].action.keys).isSubset(of: c.keys), "\(name): \(c)")
        #expect(c.prefix.count <= history.count)
    }

    @Test func counterexampleNamesTheKeyAndTheOperations() throws {
        let history = [
            Self.put(0, "y", "a", 0, 1), Self.put(0, "x", "1", 0, 1), Self.put(0, "x", "2", 2, 3),
            Self.get(1, "x", "1", 4, 5), Self.get(1, "x", "2", 6, 7),
        ]
        let c = try #require(Self.checker.check(history).counterexample)
        #expect(c.keys == ["x"])
        #expect(c.prefix.count == 3, "the later read is not part of the shortest failing prefix")
        #expect(c.stateThen == "x=2")
        #expect(c.unplaced == [history[3]])
        let text = "\(c)"
        #expect(text.contains("c1 get(x) -> 1"))
        #expect(text.contains("put(x, 2)"))
    }

    @Test func partitionsFollowKeysTouchedTogether() {
        let history = [
            Self.put(0, "a", "1", 0, 1), Self.put(0, "b", "1", 0, 1), Self.batch(0, [("c", "1"), ("d", "1")], 0, 1),
            Self.read(1, ["d", "e"], ["1", nil], 2, 3), Self.get(1, "f", nil, 2, 3),
        ]
        let r = Self.checker.check(history)
        #expect(r.isLinearizable)
        #expect(r.partitions == 4, "a, b, {c, d, e}, f")
    }

    @Test func searchBudgetGivesUnknownNotAHang() {
        // Many overlapping writes and a read that can see none of them: no linearization, and
        // proving it takes more than the budget.
        var history = (0..<12).map { Self.put($0, "x", "\($0)", 0, 100) }
        history.append(Self.get(99, "x", "none", 0, 100))
        let r = LinearizabilityChecker(maxSteps: 50).check(history)
        guard case .unknown = r.verdict else {
            Issue.record("expected unknown, got \(r)")
            return
        }
        #expect(Self.checker.check(history).counterexample != nil, "decided with the default budget")
    }

    // MARK: Session guarantees

    @Test func sessionCheckerFindsStaleReadsOfOneClient() {
        // c1 wrote 2 after 1 had completed, then read 1: read-your-writes.
        let ryw = [Self.put(0, "x", "1", 0, 1), Self.put(1, "x", "2", 2, 3), Self.get(1, "x", "1", 4, 5)]
        let v1 = SessionChecker.check(ryw)
        #expect(v1.count == 1 && v1[0].description.hasPrefix("read-your-writes"), "\(v1)")
        // c2 saw 2, then 1 (written before 2 began): monotonic reads.
        let mr = [
            Self.put(0, "x", "1", 0, 1), Self.put(0, "x", "2", 2, 3), Self.get(2, "x", "2", 4, 5),
            Self.get(2, "x", "1", 6, 7),
        ]
        let v2 = SessionChecker.check(mr)
        #expect(v2.count == 1 && v2[0].description.hasPrefix("monotonic reads"), "\(v2)")
        // Absent, when nothing deleted the key, is older than any value.
        let deleted = [
            Self.put(0, "x", "1", 1, 2), Self.get(3, "x", "1", 2, 3), Self.get(3, "x", nil, 4, 5),
        ]
        #expect(SessionChecker.check(deleted).count == 1)
        // Overlapping writes are not ordered: no violation either way.
        let concurrent = [
            Self.put(0, "x", "1", 0, 10), Self.put(1, "x", "2", 0, 10), Self.get(2, "x", "2", 11, 12),
            Self.get(2, "x", "1", 13, 14),
        ]
        #expect(SessionChecker.check(concurrent).isEmpty)
        #expect(Self.checker.check(concurrent).counterexample != nil, "but that is not linearizable")
        #expect(SessionChecker.check([Self.get(0, "x", "7", 0, 1)]).count == 1, "never written")
    }

    // MARK: Random histories

    /// Random sequential runs of the model, each operation's interval stretched around its
    /// moment of effect (so that the real-time order still allows that sequence), with some
    /// writes left unfinished (applied or not): all must be accepted. Then one read changed to
    /// another value of its key: most must be rejected.
    @Test func randomHistoriesAcceptedAndMutationsMostlyRejected() {
        var rng = SeededRandom(seed: 7)
        var rejected = 0
        var mutated = 0
        for round in 0..<300 {
            let history = Self.randomValidHistory(operations: 60, keys: 3, rng: &rng)
            let r = Self.checker.check(history)
            #expect(r.isLinearizable, "round \(round): \(r)")
            #expect(SessionChecker.check(history).isEmpty, "round \(round)")
            guard let (bad, _) = Self.mutateRead(history, rng: &rng) else { continue }
            mutated += 1
            let m = Self.checker.check(bad)
            if m.counterexample != nil { rejected += 1 } else { #expect(m.isLinearizable, "round \(round): \(m)") }
        }
        print("random histories: 300 accepted, \(rejected) of \(mutated) with a read changed rejected")
        #expect(mutated > 250)
        #expect(rejected * 10 >= mutated * 6, "\(rejected) of \(mutated) mutated histories rejected")
    }

    /// Small random histories, valid or not, decided by the checker and by trying every order
    /// of their operations: the verdicts must agree.
    @Test func agreesWithBruteForceOnSmallHistories() {
        var rng = SeededRandom(seed: 11)
        var counts = (yes: 0, no: 0)
        for round in 0..<1000 {
            var history = Self.randomValidHistory(
                operations: Int.random(in: 2...7, using: &rng), keys: 2, spread: 15, rng: &rng)
            if Int.random(in: 0..<4, using: &rng) > 0, let (bad, _) = Self.mutateRead(history, rng: &rng) {
                history = bad
            }
            // Shuffle times a little more, which may break or keep validity.
            if Bool.random(using: &rng) {
                let i = Int.random(in: 0..<history.count, using: &rng)
                history[i].invoke += UInt64.random(in: 0...30, using: &rng)
                if case .returned(let at, let seen) = history[i].completion {
                    history[i].completion = .returned(at: max(at, history[i].invoke), observed: seen)
                }
                if case .unknown(let d?) = history[i].completion {
                    history[i].completion = .unknown(deadline: max(d, history[i].invoke))
                }
            }
            let expected = Self.bruteForce(history)
            let got = Self.checker.check(history)
            #expect(got.isLinearizable == expected, "round \(round): brute force says \(expected), checker \(got)")
            if let c = got.counterexample {
                // The shortest failing prefix: it fails, and the one that ends just before it does not.
                #expect(!Self.bruteForce(c.prefix), "round \(round): \(c)")
                if let before = c.prefix.map(\.end).filter({ $0 < c.last.end }).max() {
                    let shorter = LinearizabilityChecker.prefix(c.prefix, at: before)
                    #expect(Self.bruteForce(shorter), "round \(round): \(c) fails already at \(before)")
                }
            }
            if expected { counts.yes += 1 } else { counts.no += 1 }
        }
        print("small random histories: \(counts.yes) linearizable, \(counts.no) not, as brute force says")
        #expect(counts.yes > 200 && counts.no > 200, "\(counts)")
    }

    /// A history from a random sequential run: operation i takes effect at time 10i; its
    /// interval reaches back and forward up to `spread`, so neighbours overlap. An unfinished
    /// write took effect or not (a coin), with a deadline after its moment or none.
    static func randomValidHistory(operations: Int, keys: Int, spread: UInt64 = 35, rng: inout SeededRandom)
        -> [OperationRecord]
    {
        var state: [String: String] = [:]
        var history: [OperationRecord] = []
        for i in 0..<operations {
            let at = UInt64(i) * 10 + 100
            let invoke = at - UInt64.random(in: 0...spread, using: &rng)
            let end = at + UInt64.random(in: 0...spread, using: &rng)
            let key = "k\(Int.random(in: 0..<keys, using: &rng))"
            let other = "k\(Int.random(in: 0..<keys, using: &rng))"
            let value = "v\(i)"
            var action: OperationRecord.Action
            switch Int.random(in: 0..<10, using: &rng) {
            case 0..<4: action = .get(key: key)
            case 4..<7: action = .put(key: key, value: value)
            case 7: action = .delete(key: key)
            case 8: action = .batch([.init(key: key, value: value), .init(key: other, value: nil)])
            default: action = .read(keys: [key, other].uniquedKeys)
            }
            var op = OperationRecord(
                client: i, action: action, invoke: invoke, completion: .returned(at: end, observed: []))
            if !action.isRead && Int.random(in: 0..<8, using: &rng) == 0 {
                let applied = Bool.random(using: &rng)
                op.completion = .unknown(deadline: Bool.random(using: &rng) ? end : nil)
                if !applied {
                    history.append(op)
                    continue
                }
            }
            for w in op.writes { state[w.key] = w.value }
            if action.isRead { op.completion = .returned(at: end, observed: action.keys.map { state[$0] }) }
            history.append(op)
        }
        return history
    }

    /// The history with one read's value changed to another one of that key (or absent).
    static func mutateRead(_ history: [OperationRecord], rng: inout SeededRandom) -> ([OperationRecord], Int)? {
        let reads = history.indices.filter { history[$0].action.isRead && history[$0].returned }
        guard let i = reads.randomElement(using: &rng) else { return nil }
        guard case .returned(let at, var seen) = history[i].completion else { return nil }
        let j = Int.random(in: 0..<seen.count, using: &rng)
        let key = history[i].action.keys[j]
        let values = Set(history.flatMap(\.writes).filter { $0.key == key }.map(\.value)).union([nil])
        guard let other = values.subtracting([seen[j]]).randomElement(using: &rng) else { return nil }
        seen[j] = other
        var bad = history
        bad[i].completion = .returned(at: at, observed: seen)
        return (bad, i)
    }

    /// Whether some order of the operations respects real time and the register model, trying
    /// every order. An unfinished write either is placed (before its deadline) or is left out:
    /// a write that never took effect can always be put somewhere without breaking real time.
    static func bruteForce(_ history: [OperationRecord]) -> Bool {
        let ops = history.filter { $0.returned || !$0.action.isRead }
        func orderExists(_ remaining: [Int], _ state: [String: String]) -> Bool {
            if remaining.isEmpty { return true }
            for i in remaining {
                // Next only if nothing left ended before it began.
                if remaining.contains(where: { ops[$0].end < ops[i].invoke }) { continue }
                if ops[i].observations.contains(where: { state[$0.key] != $0.value }) { continue }
                var next = state
                for w in ops[i].writes { next[w.key] = w.value }
                if orderExists(remaining.filter { $0 != i }, next) { return true }
            }
            return false
        }
        let unfinished = ops.indices.filter { !ops[$0].returned }
        for mask in 0..<(1 << unfinished.count) {
            let dropped = Set(unfinished.indices.filter { mask & (1 << $0) != 0 }.map { unfinished[$0] })
            if orderExists(ops.indices.filter { !dropped.contains($0) }, [:]) { return true }
        }
        return false
    }
}

extension Array where Element == String {
    fileprivate var uniquedKeys: [String] { self[0] == self[1] ? [self[0]] : self }
}
