import SliceKV

/// The key-value view of a tree in an etcd cluster, for `slice get|put|delete|scan etcd://…`:
/// the same keys and values as the mounts show (a key is a path, a value is the file's bytes,
/// read through the chunks of files written by a mount), without a mount.
///
/// A put is one transaction, so a value must fit in one request (`EtcdLimits.maxRequestBytes`);
/// a larger one is refused with EFBIG (write it through a mount, which stores files in chunks).
public final class EtcdKeyValue: Sendable {
    private let store: EtcdStore

    public init(_ target: EtcdTarget) {
        store = EtcdStore(
            client: EtcdClient(endpoints: target.endpoints), layout: EtcdLayout(prefix: target.prefix),
            limits: target.limits)
    }

    public func close() { store.close() }

    /// The largest value one put takes (what fits in a request with its key).
    public var maxValueSize: Int { store.maxBatchBytes }

    public func get(_ key: [UInt8]) throws -> [UInt8]? { try store.get(key, keyspace: .user) }

    public func put(_ key: [UInt8], _ value: [UInt8]) throws {
        var batch = WriteBatch()
        batch.put(key, value)
        try store.write(batch, sync: true)
    }

    public func delete(_ key: [UInt8]) throws {
        var batch = WriteBatch()
        batch.delete(key)
        try store.write(batch, sync: true)
    }

    /// Entries in `[start, end)` in key order (values of files written by a mount are read
    /// whole), until `body` returns false.
    public func scan(
        from start: [UInt8], to end: [UInt8]?, keysOnly: Bool, _ body: ([UInt8], [UInt8]) throws -> Bool
    ) throws {
        try store.scan(.user, from: start, to: end, values: !keysOnly) { k, v in try body(Array(k), Array(v)) }
    }
}
