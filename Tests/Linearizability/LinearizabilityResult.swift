/// What `LinearizabilityChecker.check` found, with the size of the work it did.
public struct LinearizabilityResult: Sendable, CustomStringConvertible {
    public enum Verdict: Sendable {
        case linearizable
        case notLinearizable(Counterexample)
        /// The search ran out of its step or time budget: nothing is known.
        case unknown(String)
    }

    public var verdict: Verdict
    /// Operations checked (reads that never returned are left out: they constrain nothing).
    public var operations: Int
    /// Independent parts the history was split into (see `LinearizabilityChecker`).
    public var partitions: Int
    /// Search steps taken, over all partitions.
    public var steps: Int

    public var isLinearizable: Bool {
        if case .linearizable = verdict { return true }
        return false
    }

    public var counterexample: Counterexample? {
        if case .notLinearizable(let c) = verdict { return c }
        return nil
    }

    public var description: String {
        let size = "\(operations) operations, \(partitions) partitions, \(steps) steps"
        switch verdict {
        case .linearizable: return "linearizable (\(size))"
        case .notLinearizable(let c): return "NOT linearizable (\(size)): \(c)"
        case .unknown(let why): return "unknown (\(size)): \(why)"
        }
    }
}
