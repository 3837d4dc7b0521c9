import Foundation
import SliceKV
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// `FileStore` over an etcd v3 cluster, so that several mounts (on several hosts) share one
/// tree: keys as `EtcdLayout` lays them out, every batch one etcd transaction.
///
/// Contract as `FileStore`'s, over the network: a batch is one transaction (all of it or none,
/// replicated by Raft before the answer), and reads are linearizable (etcd's default), so a
/// read after a write anywhere in the cluster sees it. A scan reads page after page at the
/// revision of its first page: one consistent state, like a SliceKV scan.
///
/// Limits: a batch with more operations than `limits.maxOperations` or more bytes than
/// `limits.maxRequestBytes` is refused whole with EFBIG (never split: it is one atomic
/// change); the namespace keeps its own batches under `maxBatchOperations`. Freeing batches
/// (`writeUnreachable`) are split, as nothing reaches what they delete.
///
/// Changes by other mounts reach this one through `EtcdWatcher`: each bumps `changeCount` (so
/// kept lookups are worked out again) and is handed to `remoteChange` (the filesystem drops
/// its cached nodes and tells the kernel).
final class EtcdStore: FileStore, Sendable {
    /// What the cluster accepts in one request (`--max-txn-ops`, `--max-request-bytes`).
    let client: EtcdClient
    let layout: EtcdLayout
    let limits: EtcdLimits
    private let changes = Atomic<UInt64>(0)
    /// Revisions of this store's own transactions whose watch events have not arrived yet: the
    /// watch skips those events (this mount made them and already knows).
    private let ownRevisions = Locked<Set<Int64>>([])
    /// The newest revision this store has seen in any reply.
    let seenRevision = Atomic<Int64>(0)
    /// Called (on the watch's thread) with the keys another mount changed (nil: any key may
    /// have changed).
    let remoteChange = Locked<(@Sendable ([(Keyspace, [UInt8])]?) -> Void)?>(nil)
    private let watcher = Locked<EtcdWatcher?>(nil)
    private let guards: EtcdTxnGuards
    private let cache = EtcdReadCache()
    /// Numbers the transactions of this store (what a guard key holds after each).
    private let sequence = Atomic<UInt64>(0)

    init(client: EtcdClient, layout: EtcdLayout, limits: EtcdLimits = EtcdLimits()) {
        self.client = client
        self.layout = layout
        self.limits = limits
        guards = EtcdTxnGuards(layout: layout)
    }

    /// Starts following the cluster's changes under the prefix, from the newest revision.
    func startWatching() throws {
        let status = try client.call(
            "/v3/kv/range", Etcd.RangeRequest(key: .init(layout.prefix), countOnly: true), as: Etcd.RangeResponse.self,
            kind: .range)
        let from = (status.header?.revision?.value ?? 0) + 1
        let w = EtcdWatcher(client: client, layout: layout, from: from) { [weak self] revision, keys in
            self?.remoteEvents(revision: revision, keys: keys)
        }
        watcher.withLock { $0 = w }
        w.start()
    }

    func close() {
        watcher.withLock { $0?.stop() }
        // The guard keys of this mount (best effort: a killed daemon leaves its few bytes).
        let deletes = guards.keys.map { Etcd.RequestOp(requestDeleteRange: .init(key: .init($0))) }
        _ = try? client.call("/v3/kv/txn", Etcd.TxnRequest(success: deletes), as: Etcd.TxnResponse.self, kind: .txn)
        client.shutdown()
    }

    private func remoteEvents(revision: Int64, keys: [(Keyspace, [UInt8])]?) {
        // nil keys ("anything may have changed", after a compaction) are never this mount's own.
        let own =
            keys != nil
            && ownRevisions.withLock { set -> Bool in
                let mine = set.remove(revision) != nil
                // Anything older than what the watch delivers now will never come: drop it.
                if set.count > 4096 { set = set.filter { $0 > revision } }
                return mine
            }
        if own { return }
        if let keys {
            for (keyspace, key) in keys { cache.changed(layout.etcdKey(keyspace, key), revision: revision) }
        } else {
            cache.clear()
        }
        client.counters.remoteEvents.add(1, ordering: .relaxed)
        changes.add(1, ordering: .releasing)
        remoteChange.withLock { $0 }?(keys)
    }

    private func saw(_ header: Etcd.ResponseHeader?) {
        if let r = header?.revision?.value { seenRevision.max(r) }
    }

    // MARK: Reads

    /// The stored bytes of one etcd key, read at `revision` (nil: the newest), and the
    /// revision read at.
    /// `cached`: a read of the newest value may be answered by `EtcdReadCache` (not for file
    /// chunks).
    private func rawRead(_ etcdKey: [UInt8], revision: Int64? = nil, cached: Bool = false) throws -> (
        value: [UInt8]?, revision: Int64
    ) {
        let cacheable = cached && revision == nil
        if cacheable, let hit = cache.lookup(etcdKey) {
            client.counters.cacheHits.add(1, ordering: .relaxed)
            // The value is still current (nothing changed it since), so what depends on it (a
            // file's header and chunks) is read at the newest revision this mount has seen,
            // which includes its own writes, not at the one the value was first read at.
            return (hit.value, max(hit.revision, seenRevision.load(ordering: .relaxed)))
        }
        let r = try client.call(
            "/v3/kv/range", Etcd.RangeRequest(key: .init(etcdKey), revision: revision.map { .init($0) }),
            as: Etcd.RangeResponse.self, kind: .range)
        saw(r.header)
        let at = revision ?? r.header?.revision?.value ?? 0
        let value = r.kvs?.first.map { $0.value?.bytes ?? [] }
        if cacheable { cache.read(etcdKey, value, revision: at) }
        return (value, at)
    }

    private func rawGet(_ etcdKey: [UInt8], revision: Int64? = nil, cached: Bool = false) throws -> [UInt8]? {
        try rawRead(etcdKey, revision: revision, cached: cached).value
    }

    /// The newest value of `key` in a keyspace other than `.user`, from the cache when it may.
    private func plainGet(_ key: [UInt8], _ keyspace: Keyspace) throws -> [UInt8]? {
        try rawGet(layout.etcdKey(keyspace, key), cached: EtcdReadCache.keeps(keyspace, key))
    }

    /// A `.user` value, and the revision it was read at (what its chunks are read at).
    private func userValue(_ key: [UInt8], revision: Int64? = nil) throws -> (EtcdLayout.UserValue, Int64)? {
        let (stored, at) = try rawRead(layout.etcdKey(.user, key), revision: revision, cached: true)
        guard let stored else { return nil }
        return (try EtcdLayout.decodeUser(stored), at)
    }

    private func header(_ reference: IndirectReference, revision: Int64) throws -> ChunkedValue.Header {
        guard
            let bytes = try rawGet(
                layout.etcdKey(reference.keyspace, ChunkedValue.headerKey(reference.prefix)), revision: revision),
            let h = ChunkedValue.Header(decoding: bytes)
        else {
            throw SliceError(.corruption, "etcd: the chunked value of an indirect entry has no readable header")
        }
        return h
    }

    /// Up to `buffer.count` bytes of the chunked value `reference` names, from `offset`, as it
    /// was at `revision` (the entry's: header and chunks of one state, never a mix).
    private func readChunked(
        _ reference: IndirectReference, revision: Int64, offset: UInt64, into buffer: UnsafeMutableRawBufferPointer
    ) throws -> Int {
        let h = try header(reference, revision: revision)
        guard offset < h.length else { return 0 }
        let n = Int(min(UInt64(buffer.count), h.length - offset))
        var done = 0
        while done < n {
            let position = offset + UInt64(done)
            let index = h.chunkIndex(containing: position)
            let within = Int(position - (index << UInt64(h.chunkShift)))
            let take = min(n - done, h.chunkSize - within)
            let chunk =
                try rawGet(
                    layout.etcdKey(reference.keyspace, ChunkedValue.chunkKey(reference.prefix, index)),
                    revision: revision) ?? []
            let available = max(0, min(take, chunk.count - within))
            chunk.withUnsafeBytes { c in
                if available > 0 {
                    (buffer.baseAddress! + done).copyMemory(from: c.baseAddress! + within, byteCount: available)
                }
            }
            if available < take { memset(buffer.baseAddress! + done + available, 0, take - available) }
            done += take
        }
        return n
    }

    func get(_ key: [UInt8], keyspace: Keyspace) throws -> [UInt8]? {
        guard keyspace == .user else { return try plainGet(key, keyspace) }
        return try userBytes(key, revision: nil)
    }

    /// A `.user` value's bytes, a file's chunks read whole, at `revision` (nil: the newest).
    private func userBytes(_ key: [UInt8], revision: Int64?) throws -> [UInt8]? {
        switch try userValue(key, revision: revision) {
        case nil: return nil
        case (.bytes(let b), _)?: return Array(b)
        case (.indirect(let r), let at)?:
            let h = try header(r, revision: at)
            guard h.length <= UInt64(Int32.max) else {
                throw SliceError(.invalidArgument, "value too large to read whole")
            }
            var out = [UInt8](repeating: 0, count: Int(h.length))
            _ = try out.withUnsafeMutableBytes { try readChunked(r, revision: at, offset: 0, into: $0) }
            return out
        }
    }

    func valueSize(_ key: [UInt8], keyspace: Keyspace) throws -> UInt64? {
        guard keyspace == .user else { return try plainGet(key, keyspace).map { UInt64($0.count) } }
        switch try userValue(key) {
        case nil: return nil
        case (.bytes(let b), _)?: return UInt64(b.count)
        case (.indirect(let r), let at)?: return try header(r, revision: at).length
        }
    }

    func read(_ key: [UInt8], keyspace: Keyspace, offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws
        -> Int?
    {
        let value: EtcdLayout.UserValue
        var revision: Int64 = 0
        if keyspace == .user {
            guard let v = try userValue(key) else { return nil }
            (value, revision) = v
        } else {
            guard let v = try plainGet(key, keyspace) else { return nil }
            value = .bytes(v[...])
        }
        switch value {
        case .indirect(let r): return try readChunked(r, revision: revision, offset: offset, into: buffer)
        case .bytes(let b):
            guard offset < UInt64(b.count) else { return 0 }
            let n = min(buffer.count, b.count - Int(offset))
            b.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + Int(offset), byteCount: n) }
            return n
        }
    }

    func contentEntry(_ key: [UInt8]) throws -> ContentEntry? {
        switch try userValue(key) {
        case nil: return nil
        case (.bytes(let b), _)?: return .plain(size: UInt64(b.count))
        case (.indirect(let r), let at)?:
            guard r.keyspace == FSKeyspace.chunks, let ino = FSKeyspace.decodeInode(r.prefix) else {
                throw SliceError(.corruption, "indirect entry of a path points outside the file chunks")
            }
            return .file(ino, size: try header(r, revision: at).length)
        }
    }

    func storedValue(_ key: [UInt8]) throws -> StoredValue? {
        switch try userValue(key) {
        case nil: return nil
        case (.bytes(let b), _)?: return StoredValue(bytes: Array(b))
        case (.indirect(let r), let at)?: return StoredValue(indirect: r, length: try header(r, revision: at).length)
        }
    }

    func scan(
        _ keyspace: Keyspace, from start: [UInt8], to end: [UInt8]?, values: Bool,
        _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        var from = layout.etcdKey(keyspace, start)
        let rangeEnd = end.map { layout.etcdKey(keyspace, $0) } ?? layout.keyspaceEnd(keyspace)
        var revision: Int64?
        // Keys alone are small; values may be 64 KiB chunks (256 of them is 16 MiB a page).
        let page: Int64 = values ? 256 : 2048
        while true {
            let r = try client.call(
                "/v3/kv/range",
                Etcd.RangeRequest(
                    key: .init(from), rangeEnd: .init(rangeEnd), limit: .init(page),
                    revision: revision.map { .init($0) },
                    keysOnly: values ? nil : true),
                as: Etcd.RangeResponse.self, kind: .range)
            saw(r.header)
            if revision == nil { revision = r.header?.revision?.value }
            let kvs = r.kvs ?? []
            for kv in kvs {
                guard let (_, key) = layout.decode(kv.key.bytes) else { continue }
                var value = kv.value?.bytes ?? []
                if values && keyspace == .user {
                    switch try EtcdLayout.decodeUser(value) {
                    case .bytes(let b): value = Array(b)
                    case .indirect: value = try userBytes(key, revision: revision) ?? []
                    }
                }
                let go = try key.withUnsafeBytes { k in try value.withUnsafeBytes { v in try body(k, v) } }
                if !go { return }
            }
            guard r.more == true, let last = kvs.last else { return }
            from = last.key.bytes + [0]
        }
    }

    func containsKey(withPrefix prefix: [UInt8], keyspace: Keyspace) throws -> Bool {
        let start = layout.etcdKey(keyspace, prefix)
        // No end past an all-0xFF prefix (or an empty one): the keyspace's end.
        let end = KeyRange.prefix(prefix).end.map { layout.etcdKey(keyspace, $0) } ?? layout.keyspaceEnd(keyspace)
        let r = try client.call(
            "/v3/kv/range",
            Etcd.RangeRequest(key: .init(start), rangeEnd: .init(end), limit: .init(1), keysOnly: true),
            as: Etcd.RangeResponse.self, kind: .range)
        saw(r.header)
        return !(r.kvs ?? []).isEmpty
    }

    // MARK: Writes

    /// The batch as transaction operations: the last operation on a key wins (etcd refuses a
    /// key twice in one transaction; applied in order, only the last one would show).
    private func operations(_ batch: WriteBatch) throws -> (ops: [Etcd.RequestOp], bytes: Int) {
        var order: [[UInt8]] = []
        var last: [[UInt8]: Etcd.RequestOp] = [:]
        var bytes = 0
        try batch.forEachOperation { op in
            let key: [UInt8]
            let request: Etcd.RequestOp
            switch op {
            case .put(let ks, let k, let v):
                key = layout.etcdKey(ks, k)
                let value = ks == .user ? EtcdLayout.encodeBytes(v) : Array(v)
                request = Etcd.RequestOp(requestPut: .init(key: .init(key), value: .init(value)))
                bytes += value.count
            case .delete(let ks, let k):
                key = layout.etcdKey(ks, k)
                request = Etcd.RequestOp(requestDeleteRange: .init(key: .init(key)))
            case .putIndirect(let ks, let k, let reference):
                key = layout.etcdKey(ks, k)
                request = Etcd.RequestOp(
                    requestPut: .init(key: .init(key), value: .init(EtcdLayout.encodeIndirect(reference))))
            case .putBlobReference:
                throw SliceError(.invalidArgument, "etcd: a value staged in a blob file cannot be stored in etcd")
            }
            bytes += key.count + 16
            if last.updateValue(request, forKey: key) == nil { order.append(key) }
        }
        return (order.map { last[$0]! }, bytes)
    }

    /// Sends `ops` as one transaction under a guard key (`EtcdTxnGuards`), so that the client's
    /// retries never apply it twice.
    private func commit(_ ops: [Etcd.RequestOp]) throws {
        guard !ops.isEmpty else { return }
        let number = sequence.add(1, ordering: .relaxed).newValue
        var mark: [UInt8] = []
        withUnsafeBytes(of: number.littleEndian) { mark.append(contentsOf: $0) }
        try guards.withSlot { slot in
            let request = Etcd.TxnRequest(
                compare: [.init(key: .init(slot.key), result: .EQUAL, target: .VERSION, version: .init(slot.version))],
                success: ops + [.init(requestPut: .init(key: .init(slot.key), value: .init(mark)))])
            let r = try client.call("/v3/kv/txn", request, as: Etcd.TxnResponse.self, kind: .txn)
            if r.succeeded == true {
                slot.version += 1
                if let revision = r.header?.revision?.value {
                    ownRevisions.withLock { _ = $0.insert(revision) }
                    seenRevision.max(revision)
                    for op in ops {
                        if let put = op.requestPut {
                            cache.wrote(put.key.bytes, put.value.bytes, revision: revision)
                        } else if let delete = op.requestDeleteRange {
                            cache.wrote(delete.key.bytes, nil, revision: revision)
                        }
                    }
                } else {
                    cache.clear()
                }
                return
            }
            cache.clear()  // applied or not, by a copy whose revision is unknown
            // The compare failed: an earlier copy of this call was applied (its answer was lost
            // and the client sent it again), or the slot is out of step.
            let now = try client.call(
                "/v3/kv/range", Etcd.RangeRequest(key: .init(slot.key)), as: Etcd.RangeResponse.self, kind: .range)
            let kv = now.kvs?.first
            slot.version = kv?.version?.value ?? 0
            if kv?.value?.bytes == mark { return }
            throw SliceError(
                .ioError, "etcd: a transaction guard of this mount was changed by someone else", errno: EIO)
        }
    }

    func write(_ batch: WriteBatch, sync: Bool) throws {
        defer { changes.add(1, ordering: .releasing) }
        let (ops, bytes) = try operations(batch)
        if ops.count > limits.maxOperations || bytes > limits.maxRequestBytes {
            throw SliceError(
                .invalidArgument,
                "etcd: one change of \(ops.count) operations and \(bytes) bytes is over the cluster's limits "
                    + "(\(limits.maxOperations) operations, \(limits.maxRequestBytes) bytes)", errno: EFBIG)
        }
        try commit(ops)
    }

    func writeUnreachable(_ batch: WriteBatch) throws {
        let (ops, _) = try operations(batch)
        var start = 0
        while start < ops.count {
            let end = min(ops.count, start + limits.maxOperations)
            try commit(Array(ops[start..<end]))
            start = end
        }
    }

    var maxBatchOperations: Int { limits.maxOperations - 16 }

    var maxBatchBytes: Int { limits.maxRequestBytes - (64 << 10) }

    var sharedWithOtherMounts: Bool { true }

    /// Values are never staged in etcd (`stagingThreshold` is nil, so the file code buffers).
    var stagingThreshold: Int? { nil }

    func stagedValueWriter() -> StagedValueWriter {
        preconditionFailure("an etcd store stages no values (stagingThreshold is nil)")
    }

    func write(_ batch: WriteBatch, staged stager: StagedValueWriter) throws {
        preconditionFailure("an etcd store stages no values (stagingThreshold is nil)")
    }

    var changeCount: UInt64 { changes.load(ordering: .acquiring) }

    /// Nothing to do: a transaction is answered once a quorum has it in its synced log.
    func sync() throws {}

    /// Inode numbers for this mount, `count` at a time: a compare-and-swap on the counter
    /// key, so mounts sharing the tree never hand out the same number.
    func claimInodes(_ count: UInt64) throws -> Range<InodeNumber>? {
        let key = layout.etcdKey(FSKeyspace.meta, FSKeyspace.nextInodeKey)
        for _ in 0..<64 {
            let r = try client.call(
                "/v3/kv/range", Etcd.RangeRequest(key: .init(key)), as: Etcd.RangeResponse.self, kind: .range)
            let kv = r.kvs?.first
            var first = InodeNumbers.firstAllocated
            if let v = kv?.value?.bytes {
                var reader = RecordReader(v)
                guard let n = reader.fixed64() else { throw SliceError(.corruption, "etcd: unreadable inode counter") }
                first = max(first, n)
            }
            let next = first + count
            var value: [UInt8] = []
            withUnsafeBytes(of: next.littleEndian) { value.append(contentsOf: $0) }
            let compare =
                kv == nil
                ? Etcd.Compare(key: .init(key), result: .EQUAL, target: .VERSION, version: .init(0))
                : Etcd.Compare(key: .init(key), result: .EQUAL, target: .MOD, modRevision: kv?.modRevision)
            let t = try client.call(
                "/v3/kv/txn",
                Etcd.TxnRequest(
                    compare: [compare], success: [.init(requestPut: .init(key: .init(key), value: .init(value)))]),
                as: Etcd.TxnResponse.self, kind: .txn)
            if t.succeeded == true {
                if let revision = t.header?.revision?.value { ownRevisions.withLock { _ = $0.insert(revision) } }
                return first..<next
            }
        }
        throw SliceError(.ioError, "etcd: could not claim inode numbers (64 conflicting attempts)", errno: EIO)
    }
}

extension Atomic where Value == Int64 {
    /// Raises the value to `v` if it is lower.
    func max(_ v: Int64) {
        var current = load(ordering: .relaxed)
        while current < v {
            let (exchanged, now) = compareExchange(expected: current, desired: v, ordering: .relaxed)
            if exchanged { return }
            current = now
        }
    }
}
