/// The search for a linearization of one partition of a history: Wing & Gong's algorithm with
/// Lowe's memoization, as Porcupine implements it.
///
/// Every operation is a call event (at its invocation) and a return event (at its completion),
/// kept in one list in time order (a call before a return at the same time: they overlap).
/// The search walks the list from its head: at a call it tries to linearize that operation
/// next (the model must accept it in the current state); at a return it has run into an
/// operation that ended before it was linearized, so it backtracks to its latest choice. A
/// linearized operation's two events are lifted out of the list, so the head is always the
/// earliest event still to place and every call before the first return is a candidate.
///
///     head -> call(A) -> call(B) -> ret(A) -> call(C) -> ret(B) -> ret(C)
///             candidates: A, B          (C starts after A ended)
///
/// Memoization: a (set of linearized operations, model state) pair already reached leads to
/// the same outcome, so it is not explored twice; this turns the exponential search into one
/// that is linear in practice when few operations overlap. The cache keeps 128-bit
/// fingerprints of these pairs (Zobrist hashing: a random 128-bit word per operation, XORed in
/// and out as it is linearized and undone, mixed with a hash of the state) instead of the
/// pairs: a step costs O(1) instead of copying and hashing an n-bit set, and a million cached
/// configurations (a failing search of thousands of operations) take tens of MB, not hundreds.
/// A linearization could only be missed if two different configurations had the same 128
/// bits, with odds of about N^2 / 2^129 for N configurations.
///
/// The frontier: the search is stuck at the first return event of the list, and the latest
/// such event it ever reaches bounds the shortest failing prefix. Every prefix that ends
/// before it is linearizable (a configuration got past its end), and the prefix that ends
/// there is not (else, its linearization would let the search of the whole get further).
///
/// Operations of unknown outcome are optional: at their call the search tries first to apply
/// them, then to linearize them as doing nothing (they never took effect). Their return event
/// is at their deadline, or at the end (+infinity) when there is none.
struct WingGongSearch {
    struct Input {
        var step: RegisterModel.Step
        var invoke: UInt64
        var end: UInt64
        var optional: Bool
    }

    /// One element of a linearization: an operation, and whether it took effect (only an
    /// optional operation may not).
    struct Placed {
        var op: Int
        var applied: Bool
    }

    struct Partial {
        var order: [Placed]
        var state: RegisterModel.State
    }

    enum Outcome {
        case linearizable([Placed])
        /// `frontier`: the end of the shortest failing prefix (see the type's doc). `deepest`,
        /// when asked for: a partial linearization that got there.
        case notLinearizable(frontier: UInt64, deepest: Partial?)
        case gaveUp
    }

    /// Steps and time left to all searches of one check; past either, the check says
    /// "unknown" instead of running on.
    struct Budget {
        var steps: Int
        let deadline: ContinuousClock.Instant
        var used = 0

        /// Counts one step; false when the budget is spent.
        mutating func spend() -> Bool {
            used += 1
            steps -= 1
            if steps <= 0 { return false }
            return used & 4095 != 0 || ContinuousClock.now < deadline
        }
    }

    /// 128 bits of (linearized set, state).
    private struct Fingerprint: Hashable {
        var a: UInt64
        var b: UInt64
    }

    private struct Frame {
        var op: Int
        var state: RegisterModel.State
        var applied: Bool
    }

    /// SplitMix64's finalizer: a well-mixed 64-bit value per input.
    private static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    private static func fingerprint(_ set: Fingerprint, _ state: RegisterModel.State) -> Fingerprint {
        var f = set
        for (i, v) in state.enumerated() {
            let x = UInt64(i) << 32 | UInt64(UInt32(bitPattern: v))
            f.a = mix(f.a ^ mix(x))
            f.b = mix(f.b ^ mix(x ^ 0x5555_5555_5555_5555))
        }
        return f
    }

    static func run(model: RegisterModel, ops: [Input], budget: inout Budget, trackDeepest: Bool = false) -> Outcome {
        let n = ops.count
        if n == 0 { return .linearizable([]) }
        // Events: 2i is operation i's call, 2i+1 its return. Nodes of the list are events in
        // time order; `head` is a sentinel before the first.
        let order = (0..<(2 * n)).sorted { a, b in
            let ta = a & 1 == 0 ? ops[a >> 1].invoke : ops[a >> 1].end
            let tb = b & 1 == 0 ? ops[b >> 1].invoke : ops[b >> 1].end
            if ta != tb { return ta < tb }
            if a & 1 != b & 1 { return a & 1 == 0 }
            return a < b
        }
        let head = 2 * n
        var next = [Int](repeating: -1, count: 2 * n + 1)
        var prev = [Int](repeating: -1, count: 2 * n + 1)
        var last = head
        for e in order {
            next[last] = e
            prev[e] = last
            last = e
        }

        func remove(_ e: Int) {
            next[prev[e]] = next[e]
            if next[e] >= 0 { prev[next[e]] = prev[e] }
        }
        func reinsert(_ e: Int) {
            next[prev[e]] = e
            if next[e] >= 0 { prev[next[e]] = e }
        }
        // Lifting removes a call then its return; unlifting puts them back in reverse order.
        func lift(_ op: Int) {
            remove(2 * op)
            remove(2 * op + 1)
        }
        func unlift(_ op: Int) {
            reinsert(2 * op + 1)
            reinsert(2 * op)
        }

        // Zobrist words: the fingerprint of a set is the XOR of its operations' words.
        let words = (0..<n).map { Fingerprint(a: mix(UInt64($0) &* 2), b: mix(UInt64($0) &* 2 &+ 1)) }
        var linearized = Fingerprint(a: 0, b: 0)
        var cache = Set<Fingerprint>()
        var frontier: UInt64 = 0
        var stack: [Frame] = []
        var state = model.initialState
        var deepest: Partial?
        var node = next[head]
        // At a call: false tries applying the operation, true (optional ones only) tries
        // linearizing it as never having taken effect.
        var skip = false

        while next[head] >= 0 {
            if !budget.spend() { return .gaveUp }
            if node & 1 == 0 {
                let op = node >> 1
                if let newState = skip ? state : model.apply(ops[op].step, to: state) {
                    let set = Fingerprint(a: linearized.a ^ words[op].a, b: linearized.b ^ words[op].b)
                    if cache.insert(fingerprint(set, newState)).inserted {
                        stack.append(Frame(op: op, state: state, applied: !skip))
                        state = newState
                        linearized = set
                        lift(op)
                        node = next[head]
                        skip = false
                        continue
                    }
                }
                if !skip && ops[op].optional {
                    skip = true
                } else {
                    node = next[node]
                    skip = false
                }
            } else {
                // An operation returned before being linearized: the first return event of the
                // list, so the frontier of this configuration. Then undo the latest choice.
                let end = ops[node >> 1].end
                if end > frontier || (trackDeepest && deepest == nil) {
                    frontier = max(frontier, end)
                    if trackDeepest {
                        deepest = Partial(order: stack.map { Placed(op: $0.op, applied: $0.applied) }, state: state)
                    }
                }
                guard let top = stack.popLast() else { return .notLinearizable(frontier: frontier, deepest: deepest) }
                state = top.state
                linearized = Fingerprint(a: linearized.a ^ words[top.op].a, b: linearized.b ^ words[top.op].b)
                unlift(top.op)
                if top.applied && ops[top.op].optional {
                    node = 2 * top.op
                    skip = true
                } else {
                    node = next[2 * top.op]
                    skip = false
                }
            }
        }
        return .linearizable(stack.map { Placed(op: $0.op, applied: $0.applied) })
    }
}
