/// What crash writers acknowledged, carried from one kill to the next (the kill loop keeps it in
/// a state file), and the check of a recovered store against it.
///
/// Writers report each operation before it starts and once it is acknowledged, one line each:
///
///     B <thread> P <key> <value> [<key2>]   put (with key2: a batch putting both)
///     B <thread> D <key>                    delete
///     B <thread> M <from> <to> <value>      rename: <to> gets <value>, <from> goes
///     A <thread>                            the thread's operation was acknowledged
///
/// Values are descriptors: the bytes themselves for `crash-writer`, a token that expands to a
/// file's content for `crash-file-writer` (see `FileContent`).
struct CrashLedger {
    /// Per key, the value last acknowledged (nil: deleted).
    var acknowledged: [String: String?] = [:]
    /// Per thread, the operation begun and not acknowledged: each key may or may not have it.
    var pending: [Int: [String: String?]] = [:]
    /// Acknowledged operations, over every cycle.
    var acks = 0
    /// Kills survived (verifications done).
    var cycles = 0

    mutating func apply(_ line: Substring) {
        let parts = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 2, let thread = Int(parts[1]) else { return }
        switch (parts[0], parts.count > 2 ? parts[2] : "") {
        case ("B", "D") where parts.count >= 4:
            pending[thread] = [parts[3]: String?.none]
        case ("B", "P") where parts.count >= 5:
            var ops: [String: String?] = [parts[3]: .some(parts[4])]
            if parts.count >= 6 { ops[parts[5]] = .some(parts[4]) }
            pending[thread] = ops
        case ("B", "M") where parts.count >= 6:
            pending[thread] = [parts[3]: String?.none, parts[4]: parts[5]]
        case ("A", _):
            guard let ops = pending[thread] else { return }
            for (k, v) in ops { acknowledged[k] = v }
            pending[thread] = nil
            acks += 1
        default: break
        }
    }

    /// Applies a writer's output. Only complete lines count: the last one may be cut by the kill.
    mutating func apply(output: String) {
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false)
        for line in lines.dropLast() { apply(line) }
    }

    /// Compares what recovery kept (`actual`, key to content) with what was acknowledged, then
    /// settles the operations in flight at the kill as recovery decided. `content` expands a
    /// descriptor; `partialWrites`: an interrupted write may leave any prefix of its content
    /// (a file written through a mount), where a put is all or nothing. Returns the problems.
    mutating func verify(
        actual: [String: [UInt8]], content: (String) -> [UInt8], partialWrites: Bool
    ) -> [String] {
        var maybe: [String: [String?]] = [:]
        for ops in pending.values { for (k, v) in ops { maybe[k, default: []].append(v) } }
        /// The descriptor of `got` if an operation in flight on `key` explains it.
        func inFlight(_ key: String, _ got: [UInt8]?) -> String?? {
            for candidate in maybe[key] ?? [] {
                guard let d = candidate else {
                    if got == nil { return .some(nil) }
                    continue
                }
                guard let got else { continue }
                let full = content(d)
                if got == full { return .some(d) }
                if partialWrites && full.starts(with: got) { return .some("\(d)@\(got.count)") }
            }
            return nil
        }
        var problems: [String] = []
        for (key, value) in acknowledged.sorted(by: { $0.key < $1.key }) {
            let got = actual[key]
            if got == value.map(content) || inFlight(key, got) != nil { continue }
            problems.append(
                "key \(key) is \(got.map { "\($0.count) bytes \(preview($0))" } ?? "absent"), acknowledged \(value.map { "\(content($0).count) bytes \(preview(content($0)))" } ?? "deleted")"
            )
        }
        for (key, got) in actual.sorted(by: { $0.key < $1.key }) where acknowledged[key] == nil {
            if inFlight(key, got) == nil {
                problems.append("key \(key) (\(got.count) bytes \(preview(got))) was never written")
            }
        }
        // The operations in flight are settled now: adopt what recovery decided.
        for key in maybe.keys {
            let got = actual[key]
            let kept = acknowledged[key].map { $0.map(content) }
            if kept.map({ $0 == got }) == true { continue }
            if let settled = inFlight(key, got) { acknowledged[key] = settled }
        }
        pending = [:]
        cycles += 1
        return problems
    }

    private func preview(_ bytes: [UInt8]) -> String {
        "\"" + String(decoding: bytes.prefix(24), as: UTF8.self) + (bytes.count > 24 ? "…" : "") + "\""
    }
}

/// The ledger as a small text file, so a shell loop can carry it between kills.
extension CrashLedger {
    /// `acks N`, `cycles N`, then one line per key: `K <key> <descriptor>` or `X <key>`.
    var stateText: String {
        var out = "acks \(acks)\ncycles \(cycles)\n"
        for (key, value) in acknowledged.sorted(by: { $0.key < $1.key }) {
            out += value.map { "K \(key) \($0)\n" } ?? "X \(key)\n"
        }
        return out
    }

    init(stateText: String) {
        for line in stateText.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 2).map(String.init)
            switch (parts.first ?? "", parts.count) {
            case ("acks", 2): acks = Int(parts[1]) ?? 0
            case ("cycles", 2): cycles = Int(parts[1]) ?? 0
            case ("K", 3): acknowledged[parts[1]] = .some(parts[2])
            case ("X", 2): acknowledged[parts[1]] = .some(nil)
            default: break
            }
        }
    }
}
