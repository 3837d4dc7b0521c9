/// A group of puts and deletes applied atomically: all of them or none, also across a crash
/// (the whole batch is one WAL payload, so a torn record drops it whole).
///
/// Encoding (the WAL payload; on disk: do not change):
/// ```
/// batch := sequence:fixed64  count:fixed32  op*
/// op    := 0x01 varint(keyLen) key varint(valueLen) value     -- put
///        | 0x00 varint(keyLen) key                            -- delete
///        | 0x02 varint(keyLen) key varint(refLen) reference   -- put of a value stored in a blob file
///        | 0x03 varint(keyLen) key varint(refLen) indirect    -- put of a reference to a chunked value
///                                                                (`IndirectReference`, `putIndirect`)
/// key   := keyspace:uint8 userKey                             (see `Keyspace`)
/// ```
/// `sequence` is that of the first op; op `i` gets `sequence + i`.
public struct WriteBatch: Sendable {
    static let headerSize = 12

    private(set) var rep: [UInt8]
    /// Blob files that copied references in this batch point into, kept until it is written.
    var heldBlobFiles: [BlobFile] = []
    /// Set on a batch that frees space (deletions; an `rm` through the mount): on a full disk
    /// it may use the store's space reserve (`Options.spaceReserve`) rather than fail.
    public var freesSpace = false

    public init() {
        // Room for a typical small put up front: the header alone would be outgrown by the
        // first op, costing a second allocation and a copy per single-put batch.
        rep = []
        rep.reserveCapacity(256)
        rep.append(contentsOf: repeatElement(0, count: WriteBatch.headerSize))
    }

    init(rep: [UInt8]) { self.rep = rep }

    /// Number of operations.
    public var count: Int {
        rep.withUnsafeBytes { Int($0.fixed32(at: 8)) }
    }

    public var isEmpty: Bool { count == 0 }

    /// Bytes this batch takes in the WAL.
    public var byteSize: Int { rep.count }

    var sequence: SequenceNumber {
        get { rep.withUnsafeBytes { $0.fixed64(at: 0) } }
        set { Swift.withUnsafeBytes(of: newValue.littleEndian) { src in for i in 0..<8 { rep[i] = src[i] } } }
    }

    /// Room for `n` more bytes: one growth per op instead of one per append (a fresh batch
    /// holds 12 bytes), doubling so that large batches still grow geometrically.
    @inline(__always)
    private mutating func reserve(_ n: Int) {
        let needed = rep.count + n
        if rep.capacity < needed { rep.reserveCapacity(max(needed, rep.capacity * 2)) }
    }

    private mutating func setCount(_ n: Int) { rep.putFixed32(UInt32(n), at: 8) }

    public mutating func put(_ key: [UInt8], _ value: [UInt8], keyspace: Keyspace = .user) {
        reserve(12 + key.count + value.count)
        rep.append(ValueKind.value.rawValue)
        rep.appendVarint(key.count + 1)
        rep.append(keyspace.rawValue)
        rep.append(contentsOf: key)
        rep.appendVarint(value.count)
        rep.append(contentsOf: value)
        setCount(count + 1)
    }

    /// Puts a value as the store already holds it (from `SliceDB.storedValue`): a large value
    /// gets a second reference to its blob record, so no bytes are copied (what a rename does).
    public mutating func put(_ key: [UInt8], _ value: StoredValue, keyspace: Keyspace = .user) {
        switch value.storage {
        case .inline(let bytes):
            put(key, bytes, keyspace: keyspace)
        case .blob(var ref, let file):
            ref.isCopy = true
            var engineKey = [keyspace.rawValue]
            engineKey.append(contentsOf: key)
            engineKey.withUnsafeBytes { putBlobReference($0, ref) }
            heldBlobFiles.append(file)
        case .indirect(let reference, _):
            putIndirect(key, keyspace: keyspace, to: reference)
        }
    }

    /// Puts a value staged in a blob file by `writer` (`StagedValueWriter.stage`). Only that
    /// writer's `commit` can write the batch; any other write refuses it.
    public mutating func put(_ key: [UInt8], _ value: StagedValue, keyspace: Keyspace = .user) {
        var engineKey = [keyspace.rawValue]
        engineKey.append(contentsOf: key)
        engineKey.withUnsafeBytes { putBlobReference($0, value.reference) }
    }

    /// Puts an entry whose value is the chunked value `reference` names (see `ChunkedValue`):
    /// every read of `key` reads those chunks, as they are at the same sequence number. Put the
    /// header and chunks in the same batch (or an earlier one): a reference whose header is
    /// missing reads as corruption.
    public mutating func putIndirect(_ key: [UInt8], keyspace: Keyspace = .user, to reference: IndirectReference) {
        let payload = reference.encode()
        reserve(12 + key.count + payload.count)
        rep.append(ValueKind.indirect.rawValue)
        rep.appendVarint(key.count + 1)
        rep.append(keyspace.rawValue)
        rep.append(contentsOf: key)
        rep.appendVarint(payload.count)
        rep.append(contentsOf: payload)
        setCount(count + 1)
    }

    /// Appends every operation of `other`.
    public mutating func append(contentsOf other: WriteBatch) {
        guard !other.isEmpty else { return }
        rep.append(contentsOf: other.body)
        setCount(count + other.count)
        heldBlobFiles.append(contentsOf: other.heldBlobFiles)
    }

    /// A put whose value already sits in a blob file.
    mutating func putBlobReference(_ engineKey: UnsafeRawBufferPointer, _ ref: BlobReference) {
        rep.append(ValueKind.blobReference.rawValue)
        rep.appendVarint(engineKey.count)
        rep.append(contentsOf: engineKey)
        let r = ref.encode()
        rep.appendVarint(r.count)
        rep.append(contentsOf: r)
        setCount(count + 1)
    }

    /// Copies one operation in engine form (key with its keyspace byte).
    mutating func append(_ kind: ValueKind, _ engineKey: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) {
        rep.append(kind.rawValue)
        rep.appendVarint(engineKey.count)
        rep.append(contentsOf: engineKey)
        if kind != .deletion {
            rep.appendVarint(value.count)
            rep.append(contentsOf: value)
        }
        setCount(count + 1)
    }

    public mutating func put(_ key: some Collection<UInt8>, _ value: some Collection<UInt8>, keyspace: Keyspace = .user)
    {
        put(Array(key), Array(value), keyspace: keyspace)
    }

    public mutating func put(_ key: String, _ value: String) { put(Array(key.utf8), Array(value.utf8)) }

    public mutating func delete(_ key: [UInt8], keyspace: Keyspace = .user) {
        reserve(7 + key.count)
        rep.append(ValueKind.deletion.rawValue)
        rep.appendVarint(key.count + 1)
        rep.append(keyspace.rawValue)
        rep.append(contentsOf: key)
        setCount(count + 1)
    }

    public mutating func delete(_ key: some Collection<UInt8>, keyspace: Keyspace = .user) {
        delete(Array(key), keyspace: keyspace)
    }

    public mutating func delete(_ key: String) { delete(Array(key.utf8)) }

    public mutating func clear() {
        rep.removeAll(keepingCapacity: true)
        rep.append(contentsOf: repeatElement(0, count: WriteBatch.headerSize))
    }

    /// The operations after the header (group commit concatenates these).
    var body: ArraySlice<UInt8> { rep[WriteBatch.headerSize...] }

    /// One operation of a batch as another store sees it (`forEachOperation`).
    public enum Operation {
        case put(Keyspace, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)
        case delete(Keyspace, key: UnsafeRawBufferPointer)
        /// A put of an entry that reads as the chunked value `reference` names (`putIndirect`).
        case putIndirect(Keyspace, key: UnsafeRawBufferPointer, reference: IndirectReference)
        /// A put whose value sits in one of this store's blob files (a staged or copied value):
        /// meaningless to any other store.
        case putBlobReference(Keyspace, key: UnsafeRawBufferPointer)
    }

    /// Visits every operation in order, for stores other than SliceKV that apply the same
    /// batches (SliceFS's etcd backend). The buffers are valid during the call only.
    public func forEachOperation(_ body: (Operation) throws -> Void) throws {
        try forEach { kind, engineKey, value in
            guard let first = engineKey.first else {
                throw SliceError.corruption("empty key in batch", path: "write batch")
            }
            let keyspace = Keyspace(rawValue: first)
            let key = UnsafeRawBufferPointer(rebasing: engineKey[1...])
            switch kind {
            case .value: try body(.put(keyspace, key: key, value: value))
            case .deletion: try body(.delete(keyspace, key: key))
            case .blobReference: try body(.putBlobReference(keyspace, key: key))
            case .indirect:
                guard let r = IndirectReference(decoding: value) else {
                    throw SliceError.corruption("bad indirect reference in batch", path: "write batch")
                }
                try body(.putIndirect(keyspace, key: key, reference: r))
            }
        }
    }

    /// Visits every operation in order. Throws corruption for a malformed batch (from a WAL).
    func forEach(
        path: String = "write batch",
        _ body: (ValueKind, UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Void
    ) throws {
        try rep.withUnsafeBytes { buf in
            guard buf.count >= WriteBatch.headerSize else { throw SliceError.corruption("batch too short", path: path) }
            var p = WriteBatch.headerSize
            var seen = 0
            while p < buf.count {
                guard let kind = ValueKind(rawValue: buf[p]) else {
                    throw SliceError.corruption("unknown batch op \(buf[p])", path: path)
                }
                p += 1
                guard let kl = buf.varint(at: &p), Int(kl) <= buf.count - p else {
                    throw SliceError.corruption("bad key length in batch", path: path)
                }
                let key = UnsafeRawBufferPointer(rebasing: buf[p..<(p + Int(kl))])
                p += Int(kl)
                var value = UnsafeRawBufferPointer(start: nil, count: 0)
                if kind != .deletion {
                    guard let vl = buf.varint(at: &p), Int(vl) <= buf.count - p else {
                        throw SliceError.corruption("bad value length in batch", path: path)
                    }
                    value = UnsafeRawBufferPointer(rebasing: buf[p..<(p + Int(vl))])
                    p += Int(vl)
                }
                try body(kind, key, value)
                seen += 1
            }
            guard seen == count else { throw SliceError.corruption("batch count mismatch", path: path) }
        }
    }
}
