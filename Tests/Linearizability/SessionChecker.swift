/// Per-client guarantees, checked directly on a history without a search: read-your-writes (a
/// client's read sees its own latest write of the key, or something written no earlier) and
/// monotonic reads (a client never sees a key go back to an older value than one it has seen).
///
/// "Older" is real-time order, the only order a history shows without a linearization: value u
/// is older than value v when every operation that wrote u completed before any that wrote v
/// was invoked (the initial absent state is older than everything). A read of a value that no
/// operation wrote is reported too. Linearizability implies both guarantees; this check is
/// cheaper and names the client and the two operations involved.
///
/// Values are assumed unique per key (every write a fresh one), as the recorded workloads do.
public enum SessionChecker {
    public struct Violation: Sendable, CustomStringConvertible {
        public var description: String
    }

    /// When the writers of one value of one key ran.
    private struct Writers {
        var earliestInvoke: UInt64
        var latestEnd: UInt64
    }

    private struct Version: Hashable {
        var key: String
        var value: String?
    }

    public static func check(_ history: [OperationRecord]) -> [Violation] {
        let base = history.map(\.invoke).min() ?? 0
        var writers: [Version: Writers] = [:]
        for op in history {
            for w in op.writes {
                let v = Version(key: w.key, value: w.value)
                let mine = Writers(earliestInvoke: op.invoke, latestEnd: op.end)
                if let known = writers[v] {
                    writers[v] = Writers(
                        earliestInvoke: min(known.earliestInvoke, mine.earliestInvoke),
                        latestEnd: max(known.latestEnd, mine.latestEnd))
                } else {
                    writers[v] = mine
                }
            }
        }
        func span(_ v: Version) -> Writers? {
            // Absent is also the initial state, there before anything.
            if v.value == nil { return Writers(earliestInvoke: 0, latestEnd: writers[v]?.latestEnd ?? 0) }
            return writers[v]
        }
        func older(_ a: Version, than b: Version) -> Bool {
            guard a != b, let wa = span(a), let wb = span(b) else { return false }
            return wa.latestEnd < wb.earliestInvoke
        }

        var violations: [Violation] = []
        let clients = Dictionary(grouping: history, by: \.client)
        for client in clients.keys.sorted() {
            // What this client has written or seen of each key so far, with the operation.
            var seen: [String: [(version: Version, op: OperationRecord, wrote: Bool)]] = [:]
            for op in clients[client]!.sorted(by: { $0.invoke < $1.invoke }) {
                for o in op.observations {
                    let v = Version(key: o.key, value: o.value)
                    if span(v) == nil {
                        violations.append(
                            Violation(
                                description:
                                    "c\(client) read \(o.key) = \(o.value ?? "absent"), a value never written: "
                                    + op.describe(relativeTo: base)))
                        continue
                    }
                    for earlier in seen[o.key] ?? [] where older(v, than: earlier.version) {
                        let rule = earlier.wrote ? "read-your-writes" : "monotonic reads"
                        violations.append(
                            Violation(
                                description: "\(rule): c\(client) read \(o.key) = \(o.value ?? "absent"), older than "
                                    + "what it \(earlier.wrote ? "wrote" : "saw") before:\n    "
                                    + earlier.op.describe(relativeTo: base) + "\n    " + op.describe(relativeTo: base)))
                    }
                    // Only the versions not older than this one can still be violated against.
                    seen[o.key] = (seen[o.key] ?? []).filter { !older($0.version, than: v) } + [(v, op, false)]
                }
                guard op.returned else { continue }
                for w in op.writes {
                    let v = Version(key: w.key, value: w.value)
                    seen[w.key] = (seen[w.key] ?? []).filter { !older($0.version, than: v) } + [(v, op, true)]
                }
            }
        }
        return violations
    }
}
