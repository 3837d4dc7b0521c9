import Foundation
import Linearizability
import Testing

@testable import SliceKV

/// Histories recorded against the real engine and checked for linearizability (and the
/// per-client guarantees, `SessionChecker`): clients on threads (the synchronous core) and on
/// tasks (the async API) at once, and `slice history-client` processes killed mid-run with
/// `sync: always` and followed by reads after recovery.
@Suite struct LinearizabilityTests {
    static let keys = (0..<5).map { "k\($0)" }

    /// A random call on `keys`: gets and puts, deletes, batches over 2-3 keys, and reads of
    /// 2-3 keys from one snapshot. `id` names the value a write stores.
    static func randomAction(id: String, rng: inout SeededRandom) -> OperationRecord.Action {
        let key = keys.randomElement(using: &rng)!
        let some = Array(keys.shuffled(using: &rng).prefix(Int.random(in: 2...3, using: &rng)))
        switch Int.random(in: 0..<100, using: &rng) {
        case 0..<35: return .get(key: key)
        case 35..<55: return .put(key: key, value: id)
        case 55..<65: return .delete(key: key)
        case 65..<80:
            return .batch(some.map { .init(key: $0, value: Int.random(in: 0..<4, using: &rng) == 0 ? nil : id) })
        default: return .read(keys: some)
        }
    }

    static func perform(_ action: OperationRecord.Action, on db: SliceDB) throws -> [String?] {
        switch action {
        case .put(let k, let v): try db.put(bytes(k), HistoryValue.encode(v))
        case .delete(let k): try db.delete(bytes(k))
        case .get(let k): return [try db.get(bytes(k)).map(HistoryValue.decode)]
        case .batch(let writes): try db.write(batch(writes))
        case .read(let keys):
            let snap = try db.snapshot()
            return try keys.map { try db.get(bytes($0), snapshot: snap).map(HistoryValue.decode) }
        }
        return []
    }

    /// The async API; a read is a scan of every key (one consistent view).
    static func perform(_ action: OperationRecord.Action, on tree: LSMTree) async throws -> [String?] {
        switch action {
        case .put(let k, let v): try await tree.put(bytes(k), HistoryValue.encode(v))
        case .delete(let k): try await tree.delete(bytes(k))
        case .get(let k): return [try await tree.get(bytes(k)).map(HistoryValue.decode)]
        case .batch(let writes): try await tree.write(batch(writes))
        case .read(let keys):
            var found: [String: String] = [:]
            for try await kv in tree.scan(prefix: "k") { found[kv.keyString] = HistoryValue.decode(kv.value) }
            return keys.map { found[$0] }
        }
        return []
    }

    static func batch(_ writes: [OperationRecord.Write]) -> WriteBatch {
        var b = WriteBatch()
        for w in writes {
            if let v = w.value { b.put(bytes(w.key), HistoryValue.encode(v)) } else { b.delete(bytes(w.key)) }
        }
        return b
    }

    /// Checks a history with both checkers, recording any failure; returns the check's time.
    @discardableResult
    static func expectLinearizable(_ history: [OperationRecord], _ label: String) -> Duration {
        let verdict = HistoryVerdict(history)
        #expect(verdict.linearizability.isLinearizable, "\(label): \(verdict.linearizability)")
        #expect(verdict.sessionViolations.isEmpty, "\(label): \(verdict.sessionViolations.prefix(5))")
        print("\(label): \(verdict)")
        return verdict.searchTime
    }

    /// 4 threads on `SliceDB` and 4 tasks on `LSMTree` over the same store, 5 keys, small
    /// memtables (flushes and compactions run meanwhile) and a small blob threshold (a third
    /// of the values live in blob files).
    @Test func threadsAndTasksThroughTheAPI() async throws {
        let dir = TempDir("slice-lin")
        var options = tinyOptions()
        options.blobThreshold = 150
        options.blobFileSize = 64 << 10
        let db = try SliceDB(path: dir.path, options: options)
        let tree = LSMTree(db)
        let collected = Collected()
        let threads = DispatchGroup()
        for t in 0..<4 {
            threads.enter()
            Thread {
                var rng = SeededRandom(seed: UInt64(t + 1))
                var log = ClientLog(client: t)
                for n in 0..<600 {
                    let action = Self.randomAction(id: "c\(t)-\(n)", rng: &rng)
                    try! log.record(action) { try Self.perform(action, on: db) }
                }
                collected.add(log.operations)
                threads.leave()
            }.start()
        }
        try await withThrowingTaskGroup(of: [OperationRecord].self) { group in
            for t in 4..<8 {
                group.addTask {
                    var rng = SeededRandom(seed: UInt64(t + 1))
                    var log = ClientLog(client: t)
                    for n in 0..<300 {
                        let action = Self.randomAction(id: "c\(t)-\(n)", rng: &rng)
                        try await log.record(action) { try await Self.perform(action, on: tree) }
                    }
                    return log.operations
                }
            }
            for try await ops in group { collected.add(ops) }
        }
        await withCheckedContinuation { c in threads.notify(queue: .global()) { c.resume() } }
        let history = collected.operations
        #expect(history.count == 3600, "4 threads x 600, 4 tasks x 300")
        let stats = db.stats()
        #expect(stats.flushes > 0 && stats.compactions > 0, "background work ran during the history")
        Self.expectLinearizable(history, "threads and tasks")
        try db.close()

        // The checker finds one stale read among thousands of good calls.
        let bad = try #require(Self.withStaleRead(history), "no read to make stale")
        let clock = ContinuousClock()
        var result: LinearizabilityResult?
        let took = clock.measure { result = LinearizabilityChecker().check(bad.history) }
        print("with one stale read: \(result!.steps) steps, \(took)")
        let c = try #require(result!.counterexample, "\(result!)")
        #expect(c.last == bad.history[bad.index], "\(c)")
    }

    /// `history` with one get, a third of the way in, changed to return a value of its key
    /// that was overwritten before the get began: a write W, then another write of the key
    /// that began after W returned and returned before the get began. (The later the get, the
    /// longer the search takes to rule out every linearization of what comes before it.)
    static func withStaleRead(_ history: [OperationRecord]) -> (history: [OperationRecord], index: Int)? {
        let byTime = history.indices.sorted { history[$0].invoke < history[$1].invoke }
        for i in byTime.dropFirst(history.count / 3) {
            let op = history[i]
            guard case .get(let key) = op.action, case .returned(let at, let seen) = op.completion else { continue }
            let writes = history.filter { w in w.returned && w.end < op.invoke && w.writes.contains { $0.key == key } }
            for w in writes {
                let value = w.writes.last { $0.key == key }!.value
                let overwritten = writes.contains { $0.invoke > w.end && $0.writes.contains { $0.key == key } }
                if overwritten && value != seen[0] {
                    var bad = history
                    bad[i].completion = .returned(at: at, observed: [value])
                    return (bad, i)
                }
            }
        }
        return nil
    }

    /// `slice history-client` (3 threads, `sync: always`) is SIGKILLed mid-run, then the store
    /// is reopened here and every key read; four times over one store. Calls in flight at the
    /// kill have an unknown outcome, bounded by the kill: they took effect before it or never.
    /// The whole history (later processes read what earlier ones wrote) must be linearizable:
    /// an acknowledged write lost, or an unacknowledged one appearing late, would not be.
    @Test func crashAndRestartKeepAcknowledgedDurableWrites() throws {
        let dir = TempDir("slice-lincrash")
        var rng = SeededRandom(seed: 5)
        var history: [OperationRecord] = []
        var unknown = 0
        for cycle in 0..<4 {
            let output = dir.file("out-\(cycle).txt")
            _ = FileManager.default.createFile(atPath: output, contents: nil)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: sliceExecutable)
            p.arguments = [
                "history-client", dir.file("db"), "--threads", "3", "--client", "\(cycle * 10)", "--seed",
                "\(cycle + 1)",
                "--sync", "always",
            ]
            p.standardOutput = FileHandle(forWritingAtPath: output)
            p.standardError = FileHandle.nullDevice
            try p.run()
            // Once it has completed calls (a loaded machine may take a while to start it), let it
            // run 100-400 ms more, then kill it outright.
            let started = ContinuousClock.now
            while (try? String(contentsOfFile: output, encoding: .utf8))?.contains("\nR ") != true
                && ContinuousClock.now - started < .seconds(30)
            {
                usleep(10_000)
            }
            usleep(UInt32(100_000 + Int.random(in: 0..<300_000, using: &rng)))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            let killed = MonotonicClock.now()
            #expect(p.terminationReason == .uncaughtSignal, "cycle \(cycle): the client exited by itself")
            let log = HistoryLog(try String(contentsOfFile: output, encoding: .utf8), deadline: killed)
            #expect(log.errors.isEmpty, "cycle \(cycle): \(log.errors.prefix(3))")
            #expect(log.completed > 20, "cycle \(cycle): only \(log.completed) calls completed")
            unknown += log.operations.count - log.completed
            history += log.operations

            // Recovery, then a read of every key, one by one and all at once.
            var reader = ClientLog(client: 1000 + cycle)
            let db = try SliceDB(path: dir.file("db"), options: tinyOptions())
            for k in Self.keys { try reader.record(.get(key: k)) { try Self.perform(.get(key: k), on: db) } }
            try reader.record(.read(keys: Self.keys)) { try Self.perform(.read(keys: Self.keys), on: db) }
            try db.close()
            history += reader.operations
        }
        #expect(unknown > 0, "no call was cut by a kill")
        Self.expectLinearizable(history, "crash and restart (\(unknown) calls cut by kills)")
    }
}

/// Operations from several clients, gathered under a lock.
final class Collected: @unchecked Sendable {
    private let lock = NSLock()
    private var ops: [OperationRecord] = []
    func add(_ more: [OperationRecord]) { lock.withLock { ops += more } }
    var operations: [OperationRecord] { lock.withLock { ops } }
}
