/// Both checkers' answers on one history, and how long the linearizability search took: what
/// every history test asserts on.
public struct HistoryVerdict: Sendable, CustomStringConvertible {
    public let linearizability: LinearizabilityResult
    public let sessionViolations: [SessionChecker.Violation]
    public let searchTime: Duration

    public init(_ history: [OperationRecord], checker: LinearizabilityChecker = LinearizabilityChecker()) {
        let clock = ContinuousClock()
        var result: LinearizabilityResult?
        searchTime = clock.measure { result = checker.check(history) }
        linearizability = result!
        sessionViolations = SessionChecker.check(history)
    }

    public var description: String { "\(linearizability), checked in \(searchTime)" }
}
