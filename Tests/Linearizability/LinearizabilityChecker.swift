/// Checks that a history of operations on a key-value store is linearizable: that there is one
/// order of all operations, consistent with their real-time order (one that completed before
/// another was invoked comes first), in which every read sees what the register model
/// (`RegisterModel`) says it must.
///
/// P-compositionality: a history is linearizable if and only if its restriction to each
/// object is, so the history is split and each part searched on its own (`WingGongSearch`).
/// Operations that touch several keys (batches, multi-key reads) join their keys into one
/// object: the parts are the connected components of "touched together", and each is checked
/// with a register per key of the component. Histories whose batches stay within small groups
/// of keys are therefore checked as fast as single-key ones.
///
/// Operations of unknown outcome (`OperationRecord.Completion.unknown`) may take effect at any moment
/// between their invocation and their deadline, or never; reads among them are left out.
///
/// The search is bounded (`maxSteps`, `timeLimit`): past that the verdict is `.unknown`, never
/// a hang. When the verdict is `.notLinearizable`, the counterexample is the shortest failing
/// prefix of the failing part.
public struct LinearizabilityChecker: Sendable {
    public var maxSteps: Int
    public var timeLimit: Duration

    public init(maxSteps: Int = 50_000_000, timeLimit: Duration = .seconds(60)) {
        self.maxSteps = maxSteps
        self.timeLimit = timeLimit
    }

    public func check(_ history: [OperationRecord]) -> LinearizabilityResult {
        var budget = WingGongSearch.Budget(steps: maxSteps, deadline: .now + timeLimit)
        let checked = history.filter { !$0.action.keys.isEmpty && ($0.returned || !$0.action.isRead) }
        let parts = LinearizabilityChecker.partitions(checked)
        var result = LinearizabilityResult(
            verdict: .linearizable, operations: checked.count, partitions: parts.count, steps: 0)
        let base = history.map(\.invoke).min() ?? 0
        for part in parts {
            let keys = Array(Set(part.flatMap(\.action.keys))).sorted()
            switch LinearizabilityChecker.search(part, keys: keys, budget: &budget) {
            case .linearizable:
                continue
            case .gaveUp:
                result.verdict = .unknown(
                    "the search budget (\(maxSteps) steps, \(timeLimit)) ran out on keys [\(keys.joined(separator: ", "))]"
                        + " (\(part.count) operations)")
            case .notLinearizable(let frontier, _):
                result.verdict = .notLinearizable(
                    LinearizabilityChecker.explain(part, keys: keys, frontier: frontier, base: base, budget: &budget))
                result.steps = budget.used
                return result
            }
        }
        result.steps = budget.used
        return result
    }

    /// Operations grouped by connected components of the keys they touch together.
    static func partitions(_ ops: [OperationRecord]) -> [[OperationRecord]] {
        var parent: [String: String] = [:]
        func find(_ k: String) -> String {
            var root = k
            while let p = parent[root], p != root { root = p }
            var at = k
            while let p = parent[at], p != root {
                parent[at] = root
                at = p
            }
            return root
        }
        for op in ops {
            let keys = op.action.keys
            for k in keys where parent[k] == nil { parent[k] = k }
            for k in keys.dropFirst() {
                let a = find(keys[0])
                let b = find(k)
                if a != b { parent[b] = a }
            }
        }
        var groups: [String: [OperationRecord]] = [:]
        for op in ops { groups[find(op.action.keys[0]), default: []].append(op) }
        return groups.keys.sorted().map { groups[$0]! }
    }

    static func search(
        _ ops: [OperationRecord], keys: [String], budget: inout WingGongSearch.Budget, trackDeepest: Bool = false
    ) -> WingGongSearch.Outcome {
        var model = RegisterModel(keys: keys)
        let inputs = ops.map { op in
            WingGongSearch.Input(step: model.step(for: op), invoke: op.invoke, end: op.end, optional: !op.returned)
        }
        return WingGongSearch.run(model: model, ops: inputs, budget: &budget, trackDeepest: trackDeepest)
    }

    /// `ops` as they stood at time `cut`: operations invoked later are gone, and those that
    /// had not completed by then have an unknown outcome (reads among them are dropped).
    public static func prefix(_ ops: [OperationRecord], at cut: UInt64) -> [OperationRecord] {
        ops.compactMap { op in
            if op.invoke > cut { return nil }
            if op.end <= cut { return op }
            if op.action.isRead { return nil }
            var cutOp = op
            cutOp.completion = .unknown(deadline: nil)
            return cutOp
        }
    }

    /// The counterexample for a part known not to be linearizable: its prefix up to the
    /// search's frontier (the shortest failing one, see `WingGongSearch`), searched once more
    /// for a partial linearization that reached the frontier.
    static func explain(
        _ ops: [OperationRecord], keys: [String], frontier: UInt64, base: UInt64, budget: inout WingGongSearch.Budget
    ) -> Counterexample {
        let shortest = prefix(ops, at: frontier)
        let last = ops.first { $0.end == frontier } ?? ops[ops.count - 1]
        var model = RegisterModel(keys: keys)
        for op in shortest { _ = model.step(for: op) }  // the same value ids as the search
        var counterexample = Counterexample(
            keys: keys, prefix: shortest, last: last, linearized: [], stateThen: model.describe(model.initialState),
            unplaced: shortest, base: base)
        // Out of budget here, the counterexample goes without its partial linearization.
        if case .notLinearizable(_, let deepest?) = search(shortest, keys: keys, budget: &budget, trackDeepest: true) {
            counterexample.linearized = deepest.order.map {
                shortest[$0.op].describe(relativeTo: base) + ($0.applied ? "" : " (no effect)")
            }
            counterexample.stateThen = model.describe(deepest.state)
            let placed = Set(deepest.order.map(\.op))
            counterexample.unplaced = shortest.indices.filter { !placed.contains($0) }.map { shortest[$0] }
        }
        return counterexample
    }
}
