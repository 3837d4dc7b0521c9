/// One client's part of a history, recorded as it runs: a client makes one call at a time, so
/// each client (thread) keeps its own log and the logs are merged afterwards, with no lock on
/// the measured path.
public struct ClientLog: Sendable {
    public let client: Int
    public private(set) var operations: [OperationRecord] = []

    public init(client: Int) { self.client = client }

    /// Runs `call` between two clock readings and records it. `call` returns what a read saw
    /// (one value or nil per key of `action`); writes return []. A call that throws is recorded
    /// with an unknown outcome (it may or may not have taken effect), and the error rethrown.
    public mutating func record(_ action: OperationRecord.Action, _ call: () throws -> [String?]) rethrows {
        let invoke = MonotonicClock.now()
        do { finish(action, invoke, try call()) } catch {
            finish(action, invoke, nil)
            throw error
        }
    }

    /// `record` for an async call.
    public mutating func record(_ action: OperationRecord.Action, _ call: () async throws -> [String?]) async rethrows {
        let invoke = MonotonicClock.now()
        do { finish(action, invoke, try await call()) } catch {
            finish(action, invoke, nil)
            throw error
        }
    }

    /// Appends a call that returned `observed` now, or (nil) whose outcome is unknown.
    private mutating func finish(_ action: OperationRecord.Action, _ invoke: UInt64, _ observed: [String?]?) {
        let completion: OperationRecord.Completion =
            if let observed { .returned(at: MonotonicClock.now(), observed: observed) } else { .unknown(deadline: nil) }
        operations.append(OperationRecord(client: client, action: action, invoke: invoke, completion: completion))
    }
}
