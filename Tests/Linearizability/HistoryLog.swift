/// Reads the history that `slice history-client` prints (Sources/slice/HistoryClient.swift):
/// one line per event, written whole by one write(2), so lines of different threads never mix.
///
/// ```
/// line    := "I" time client action     -- invoked
///          | "R" time client value*     -- returned (a get or read: one value per key)
///          | "E" time client message    -- failed: the outcome is unknown
/// action  := "put" key value | "delete" key | "get" key
///          | "batch" (key "=" value)+   -- value "-": a delete
///          | "read" key+
/// value   := id | "-"                   -- "-": absent
/// ```
/// Fields are separated by one space; times are CLOCK_MONOTONIC nanoseconds. A client makes
/// one call at a time, so a result belongs to its client's latest invocation. A client's last
/// invocation without a result (the process was killed) has an unknown outcome, bounded by
/// `deadline` when given. Only whole lines count: the last one may have been cut by the kill.
public struct HistoryLog: Sendable {
    public private(set) var operations: [OperationRecord] = []
    /// "E" lines and lines that do not parse.
    public private(set) var errors: [String] = []
    /// Operations that returned.
    public private(set) var completed = 0

    public init(_ text: String, deadline: UInt64?) {
        var pending: [Int: (action: OperationRecord.Action, invoke: UInt64)] = [:]
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        // Without a final newline, the last line may be cut.
        for line in lines.dropLast() where !line.isEmpty {
            let f = line.split(separator: " ")
            guard f.count >= 3, let time = UInt64(f[1]), let client = Int(f[2]) else {
                errors.append("unparsable line: \(line)")
                continue
            }
            switch f[0] {
            case "I":
                guard let action = HistoryLog.action(f.dropFirst(3)) else {
                    errors.append("unparsable invocation: \(line)")
                    continue
                }
                if let p = pending[client] {
                    errors.append("c\(client) invoked again before a result: \(line)")
                    operations.append(
                        OperationRecord(
                            client: client, action: p.action, invoke: p.invoke, completion: .unknown(deadline: nil)))
                }
                pending[client] = (action, time)
            case "R":
                guard let p = pending.removeValue(forKey: client) else {
                    errors.append("result without an invocation: \(line)")
                    continue
                }
                let observed = f.dropFirst(3).map { $0 == "-" ? nil : String($0) }
                operations.append(
                    OperationRecord(
                        client: client, action: p.action, invoke: p.invoke,
                        completion: .returned(at: time, observed: observed)))
                completed += 1
            case "E":
                errors.append(String(line))
                if let p = pending.removeValue(forKey: client) {
                    operations.append(
                        OperationRecord(
                            client: client, action: p.action, invoke: p.invoke, completion: .unknown(deadline: nil)))
                }
            default:
                errors.append("unknown line: \(line)")
            }
        }
        for (client, p) in pending.sorted(by: { $0.key < $1.key }) {
            operations.append(
                OperationRecord(
                    client: client, action: p.action, invoke: p.invoke, completion: .unknown(deadline: deadline)))
        }
    }

    static func action(_ f: ArraySlice<Substring>) -> OperationRecord.Action? {
        guard let verb = f.first else { return nil }
        let args = f.dropFirst().map(String.init)
        switch verb {
        case "put" where args.count == 2: return .put(key: args[0], value: args[1])
        case "delete" where args.count == 1: return .delete(key: args[0])
        case "get" where args.count == 1: return .get(key: args[0])
        case "read" where !args.isEmpty: return .read(keys: args)
        case "batch" where !args.isEmpty:
            var writes: [OperationRecord.Write] = []
            for a in args {
                let kv = a.split(separator: "=", maxSplits: 1)
                guard kv.count == 2 else { return nil }
                writes.append(OperationRecord.Write(key: String(kv[0]), value: kv[1] == "-" ? nil : String(kv[1])))
            }
            return .batch(writes)
        default: return nil
        }
    }
}
