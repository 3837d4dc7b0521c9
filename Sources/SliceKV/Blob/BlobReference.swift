/// Where a separated (large) value lives: the value of a `.blobReference` entry in the LSM.
///
/// Encoding (the entry's value bytes; on disk: do not change):
/// ```
/// reference := varint(fileNumber) varint(offset) varint(length) checksum:fixed32 [flags:uint8]
/// flags     := bit 0: this entry is a copy of another entry's reference (a rename), not the
///              entry the record was written for; absent = 0
/// ```
/// `offset` is where the value's first chunk starts in blob file `fileNumber`; `length` is the
/// value's size in bytes; `checksum` is the CRC32C of the whole value (unmasked), checked by
/// full reads and `check`. Ranged reads rely on the per-chunk checksums (see `BlobFormat`).
struct BlobReference: Sendable, Equatable {
    var fileNumber: UInt64
    var offset: UInt64
    var length: UInt64
    var checksum: UInt32
    /// A second reference to a record (see `BlobFileAccount.copiedBytes`).
    var isCopy = false

    /// Chunks the value occupies.
    var chunkCount: UInt64 { BlobFormat.chunkCount(length) }

    /// Bytes the value occupies in its blob file (data plus one checksum per chunk): what
    /// garbage accounting adds up.
    var diskBytes: UInt64 { BlobReference.diskBytes(length) }

    static func diskBytes(_ length: UInt64) -> UInt64 {
        length + UInt64(BlobFormat.chunkTrailerSize) * BlobFormat.chunkCount(length)
    }

    func encode() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(24)
        out.appendVarint(fileNumber)
        out.appendVarint(offset)
        out.appendVarint(length)
        out.appendFixed32(checksum)
        if isCopy { out.append(1) }
        return out
    }

    /// `nil` when the bytes are not a well-formed reference (corruption).
    init?(decoding bytes: UnsafeRawBufferPointer) {
        var p = 0
        guard let f = bytes.varint(at: &p), let o = bytes.varint(at: &p), let l = bytes.varint(at: &p),
            p + 4 == bytes.count || (p + 5 == bytes.count && bytes[p + 4] <= 1)
        else { return nil }
        fileNumber = f
        offset = o
        length = l
        checksum = bytes.fixed32(at: p)
        isCopy = p + 5 == bytes.count && bytes[p + 4] == 1
    }

    init?(decoding bytes: some Collection<UInt8>) {
        guard let r = Array(bytes).withUnsafeBytes({ BlobReference(decoding: $0) }) else { return nil }
        self = r
    }

    init(fileNumber: UInt64, offset: UInt64, length: UInt64, checksum: UInt32) {
        self.fileNumber = fileNumber
        self.offset = offset
        self.length = length
        self.checksum = checksum
    }
}

/// A value as the store holds it: its bytes when small, a reference into a blob file when
/// large, or a reference to a chunked value (an indirect entry). `WriteBatch.put(_:_:keyspace:)`
/// stores it under another key without copying a large value's bytes (renames); an indirect
/// entry is put again as the same reference. Use it before the source key changes again: a handle to a value
/// that has since been overwritten and compacted away is refused.
public struct StoredValue: Sendable {
    enum Storage: Sendable {
        case inline([UInt8])
        case blob(BlobReference, BlobFile)
        /// `length` is the chunked value's size when it was looked up.
        case indirect(IndirectReference, length: UInt64)
    }

    let storage: Storage

    init(storage: Storage) { self.storage = storage }

    /// A value held as its bytes (a store other than SliceKV answering `storedValue`).
    public init(bytes: [UInt8]) { storage = .inline(bytes) }

    /// An entry that reads as the chunked value `reference` names, `length` bytes long.
    public init(indirect reference: IndirectReference, length: UInt64) {
        storage = .indirect(reference, length: length)
    }

    /// The value's size in bytes.
    /// The reference of an indirect entry (nil for a value held as bytes or in a blob file).
    public var indirectReference: IndirectReference? {
        if case .indirect(let r, _) = storage { return r }
        return nil
    }

    public var size: UInt64 {
        switch storage {
        case .inline(let v): return UInt64(v.count)
        case .blob(let r, _): return r.length
        case .indirect(_, let length): return length
        }
    }
}
