/// A separate namespace of keys inside one store.
///
/// Every key in the LSM tree starts with its keyspace byte (on disk: do not change), so
/// keyspaces never collide and share one WAL, so a `WriteBatch` can change several
/// atomically. API users see `.user` only; SliceFS keeps file metadata in its own keyspaces,
/// out of the user's sight. Values 0x10-0x1f are reserved for SliceFS.
public struct Keyspace: Hashable, Sendable {
    public let rawValue: UInt8

    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// The keys API users put, get and scan.
    public static let user = Keyspace(rawValue: 1)

    /// The range of engine keys `[lower, upper)` holding this keyspace's `range`.
    func engineRange(_ range: KeyRange) -> (start: [UInt8], end: [UInt8]) {
        let start = [rawValue] + (range.start ?? [])
        let end = range.end.map { [rawValue] + $0 } ?? (rawValue == 0xff ? [0xff, 0xff, 0xff, 0xff] : [rawValue + 1])
        return (start, end)
    }
}
