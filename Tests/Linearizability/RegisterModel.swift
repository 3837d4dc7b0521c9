/// The sequential specification that histories are checked against: every key is a register
/// that holds a value or nothing (absent), initially absent. A put or a delete sets one
/// register, a batch sets several at once, a get must see the register's value and a read must
/// see all of its keys' values at one moment.
///
/// One model covers one partition of a history (a set of keys that operations touch together,
/// see `LinearizabilityChecker`); with one key it is the plain register model. States are
/// arrays of small integers, one per key (0: absent, else an interned value), so that the
/// search hashes and compares them cheaply.
struct RegisterModel {
    typealias State = [Int32]

    /// An operation in the model's terms: registers it must find holding given values, then
    /// registers it sets (in order: a later write of the same key wins).
    struct Step {
        var expects: [Slot] = []
        var sets: [Slot] = []
    }

    struct Slot {
        var key: Int
        var value: Int32
    }

    let keys: [String]
    private let keyIndex: [String: Int]
    /// Value names by id; id 0 (absent) has none.
    private var names: [String] = [""]
    private var ids: [String: Int32] = [:]

    init(keys: [String]) {
        self.keys = keys
        keyIndex = Dictionary(uniqueKeysWithValues: keys.enumerated().map { ($1, $0) })
    }

    var initialState: State { State(repeating: 0, count: keys.count) }

    /// The id of a value (nil: absent). A value that no write used gets an id of its own, which
    /// no state holds, so a read that saw it cannot be linearized.
    mutating func id(_ value: String?) -> Int32 {
        guard let value else { return 0 }
        if let id = ids[value] { return id }
        names.append(value)
        ids[value] = Int32(names.count - 1)
        return Int32(names.count - 1)
    }

    /// REQUIRES: every key of `op` is one of the model's keys.
    mutating func step(for op: OperationRecord) -> Step {
        var step = Step()
        for w in op.writes { step.sets.append(Slot(key: keyIndex[w.key]!, value: id(w.value))) }
        for o in op.observations { step.expects.append(Slot(key: keyIndex[o.key]!, value: id(o.value))) }
        return step
    }

    /// The state after `step`, or nil when `step` is impossible in `state` (a read that would
    /// have seen something else).
    func apply(_ step: Step, to state: State) -> State? {
        for e in step.expects where state[e.key] != e.value { return nil }
        if step.sets.isEmpty { return state }
        var next = state
        for s in step.sets { next[s.key] = s.value }
        return next
    }

    func describe(_ state: State) -> String {
        zip(keys, state).map { "\($0)=\($1 == 0 ? "absent" : names[Int($1)])" }.joined(separator: ", ")
    }
}
