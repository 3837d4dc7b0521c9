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
/// that is linear in practice when few operations overlap.
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
        /// With the deepest partial linearization when asked for.
        case notLinearizable(deepest: Partial?)
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

    private struct CacheKey: Hashable {
        var linearized: [UInt64]
        var state: RegisterModel.State
    }

    private struct Frame {
        var op: Int
        var state: RegisterModel.State
        var applied: Bool
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

        var linearized = [UInt64](repeating: 0, count: (n + 63) / 64)
        var cache = Set<CacheKey>()
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
                    var bits = linearized
                    bits[op >> 6] |= 1 << UInt64(op & 63)
                    if cache.insert(CacheKey(linearized: bits, state: newState)).inserted {
                        stack.append(Frame(op: op, state: state, applied: !skip))
                        state = newState
                        linearized = bits
                        lift(op)
                        if trackDeepest && stack.count > (deepest?.order.count ?? -1) {
                            deepest = Partial(order: stack.map { Placed(op: $0.op, applied: $0.applied) }, state: state)
                        }
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
                // An operation returned before being linearized: undo the latest choice.
                guard let top = stack.popLast() else { return .notLinearizable(deepest: deepest) }
                state = top.state
                linearized[top.op >> 6] &= ~(1 << UInt64(top.op & 63))
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
