/// Why a history is not linearizable, made as small as the checker can: the keys of the failing
/// partition, the shortest prefix of that partition (by time) that already has no
/// linearization, the operation whose completion closes that prefix, and how far the search
/// got: its deepest partial linearization, the model state there, and the operations it could
/// not place after it.
public struct Counterexample: Sendable, CustomStringConvertible {
    public var keys: [String]
    /// The partition's operations in the shortest failing prefix, as checked there: an
    /// operation still running at the cut counts as one of unknown outcome.
    public var prefix: [OperationRecord]
    /// The operation whose completion ends the shortest failing prefix.
    public var last: OperationRecord
    /// The deepest partial linearization of the prefix, in order ("(no effect)" marks an
    /// operation of unknown outcome linearized as never having taken effect).
    public var linearized: [String]
    public var stateThen: String
    /// Operations of the prefix that the deepest partial linearization left out.
    public var unplaced: [OperationRecord]
    /// Time origin of the descriptions: the history's earliest invocation.
    public var base: UInt64

    public var description: String {
        var lines = [
            "keys [\(keys.joined(separator: ", "))]: the shortest failing prefix has \(prefix.count) operations "
                + "and ends when this one returns:",
            "    " + last.describe(relativeTo: base),
            "  deepest partial linearization: \(linearized.count) operations"
                + (linearized.count > 8 ? ", the last 8:" : ":"),
        ]
        lines += linearized.suffix(8).map { "    " + $0 }
        lines.append("  state then: \(stateThen)")
        lines.append("  operations it could not place next:")
        lines += unplaced.sorted { $0.invoke < $1.invoke }.prefix(12).map { "    " + $0.describe(relativeTo: base) }
        return lines.joined(separator: "\n")
    }
}
