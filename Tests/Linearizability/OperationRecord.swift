/// One client's call on a store as a history records it: what was asked, when it was invoked,
/// and when and with what it returned (if it did).
///
/// Times are `MonotonicClock` nanoseconds. The invoke time is taken before the call starts and
/// the completion time after it returns, so the call took effect somewhere inside the interval.
public struct OperationRecord: Sendable, Hashable {
    public var client: Int
    public var action: Action
    public var invoke: UInt64
    public var completion: Completion

    public init(client: Int, action: Action, invoke: UInt64, completion: Completion) {
        self.client = client
        self.action = action
        self.invoke = invoke
        self.completion = completion
    }

    /// What a client asked for.
    public enum Action: Sendable, Hashable {
        case put(key: String, value: String)
        case delete(key: String)
        case get(key: String)
        /// Puts (a value) and deletes (nil), applied all at once, in order.
        case batch([Write])
        /// Several keys read from one consistent view (a snapshot).
        case read(keys: [String])

        /// Every key the action touches, in order, without repeats.
        public var keys: [String] {
            switch self {
            case .put(let k, _), .delete(let k), .get(let k): return [k]
            case .batch(let writes): return writes.map(\.key).uniqued()
            case .read(let keys): return keys.uniqued()
            }
        }

        public var isRead: Bool {
            switch self {
            case .get, .read: return true
            case .put, .delete, .batch: return false
            }
        }
    }

    public struct Write: Sendable, Hashable {
        public var key: String
        /// nil: a delete.
        public var value: String?
        public init(key: String, value: String?) {
            self.key = key
            self.value = value
        }
    }

    public enum Completion: Sendable, Hashable {
        /// Returned at `at`. `observed`: for a get or read, what it returned for each key of the
        /// action (nil: absent); empty for writes.
        case returned(at: UInt64, observed: [String?])
        /// Never returned (the process was killed, or the call failed in a way that says nothing
        /// of its effect): it took effect at some moment after its invocation and no later than
        /// `deadline`, or never. `deadline` nil: no bound (Jepsen's `:info`, Porcupine's return
        /// time of +infinity); after a crash, the moment the store was reopened, since an
        /// operation of a dead process cannot take effect after recovery.
        case unknown(deadline: UInt64?)
    }

    /// Completion time, `UInt64.max` for an unknown outcome without a deadline.
    public var end: UInt64 {
        switch completion {
        case .returned(let at, _): return at
        case .unknown(let deadline): return deadline ?? .max
        }
    }

    public var returned: Bool {
        if case .returned = completion { return true }
        return false
    }

    /// What the operation writes, in order: each key with its new value (nil: deleted).
    public var writes: [Write] {
        switch action {
        case .put(let k, let v): return [Write(key: k, value: v)]
        case .delete(let k): return [Write(key: k, value: nil)]
        case .batch(let w): return w
        case .get, .read: return []
        }
    }

    /// What a returned read saw, per key; empty for writes and for reads that never returned.
    public var observations: [(key: String, value: String?)] {
        guard case .returned(_, let observed) = completion, action.isRead else { return [] }
        return Array(zip(action.keys, observed)).map { (key: $0.0, value: $0.1) }
    }

    /// "c3 put(k1, v7) 1.250..1.310 ms", times relative to `base`.
    public func describe(relativeTo base: UInt64) -> String {
        func ms(_ t: UInt64) -> String {
            if t == .max { return "inf" }
            let us = (Int64(bitPattern: t &- base)) / 1000
            let sign = us < 0 ? "-" : ""
            let a = abs(us)
            let frac = String(a % 1000)
            return "\(sign)\(a / 1000).\(String(repeating: "0", count: 3 - frac.count))\(frac)"
        }
        func show(_ v: String?) -> String { v ?? "absent" }
        let call: String
        switch action {
        case .put(let k, let v): call = "put(\(k), \(v))"
        case .delete(let k): call = "delete(\(k))"
        case .get(let k): call = "get(\(k))"
        case .batch(let w): call = "batch(" + w.map { "\($0.key)=\(show($0.value))" }.joined(separator: ", ") + ")"
        case .read(let keys): call = "read(" + keys.joined(separator: ", ") + ")"
        }
        switch completion {
        case .returned(let at, let observed):
            let result = action.isRead ? " -> " + observed.map(show).joined(separator: ", ") : ""
            return "c\(client) \(call)\(result) [\(ms(invoke))..\(ms(at)) ms]"
        case .unknown(let deadline):
            return "c\(client) \(call) -> ? [\(ms(invoke))..\(deadline.map(ms) ?? "inf") ms, maybe never]"
        }
    }
}

extension Array where Element: Hashable {
    func uniqued() -> [Element] {
        var seen = Set<Element>()
        return filter { seen.insert($0).inserted }
    }
}
