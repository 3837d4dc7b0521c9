/// Resolves indirect entries: reads the chunked value an `IndirectReference` names (see
/// `ChunkedValue`) through one `ReadView`, so its header and chunks are read at the same
/// sequence number as the entry that named them, from the same memtables and files. Every read
/// path (get, ranged read, size, scans, `check`) resolves indirect entries here.
///
/// Chunks are read with point lookups through the normal read path, so a chunk large enough to
/// live in a blob file reads like any other value; a ranged read looks up only the chunks its
/// range touches.
struct ChunkedValueReader: Sendable {
    let view: ReadView
    let blobs: BlobStore
    /// `Options.maxValueSize` and `Options.maxIndirectReadBytes`: whole reads stop there.
    let maxValueSize: Int
    let maxIndirectReadBytes: Int

    init(view: ReadView, blobs: BlobStore, options: Options) {
        self.view = view
        self.blobs = blobs
        maxValueSize = options.maxValueSize
        maxIndirectReadBytes = options.maxIndirectReadBytes
    }

    /// A chunked value found through an indirect entry, with its header read.
    struct Value: Sendable {
        let reader: ChunkedValueReader
        let reference: IndirectReference
        let header: ChunkedValue.Header
        /// The indirect entry's key (keyspace byte first), for error messages.
        let entryKey: [UInt8]

        var length: UInt64 { header.length }

        /// Reads `buffer.count` bytes at `offset`; holes and the missing ends of short chunks
        /// read as zeros. REQUIRES: `offset + buffer.count <= length`.
        func read(from offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
            try reader.read(self, from: offset, into: buffer)
        }

        /// The whole value, refused (before anything is allocated) when it is larger than a
        /// whole read may return.
        func readAll() throws -> [UInt8] { try reader.readAll(self) }
    }

    /// Decodes an indirect entry's payload and reads the header it names. Throws corruption,
    /// naming the entry's key, when the payload or header is malformed or the header is missing.
    func resolve(_ payload: some Collection<UInt8>, entryKey: some Collection<UInt8>) throws -> Value {
        let entryKey = Array(entryKey)
        guard let reference = IndirectReference(decoding: payload) else {
            throw SliceError(.corruption, "malformed indirect reference in the entry of \(Self.describe(entryKey))")
        }
        let headerKey = ChunkedValue.headerKey(reference.prefix)
        let bytes: [UInt8]
        switch try view.lookup(reference.keyspace, headerKey) {
        case .found(let v): bytes = v
        case .blob(let r): bytes = try blobs.readAll(try Self.blobReference(r, entryKey))
        case .indirect:
            throw SliceError(
                .corruption,
                "the chunked value header \(Self.describe(reference, headerKey)) of \(Self.describe(entryKey)) "
                    + "is itself an indirect entry")
        case .deleted, .absent:
            throw SliceError(
                .corruption,
                "\(Self.describe(entryKey)) refers to a chunked value whose header \(Self.describe(reference, headerKey)) "
                    + "is missing (a dangling indirect reference)")
        }
        guard let header = ChunkedValue.Header(decoding: bytes) else {
            throw SliceError(
                .corruption,
                "malformed chunked value header \(Self.describe(reference, headerKey)) (\(bytes.count) bytes) "
                    + "of \(Self.describe(entryKey))")
        }
        return Value(reader: self, reference: reference, header: header, entryKey: entryKey)
    }

    /// `resolve` then `readAll`.
    func readAll(_ payload: some Collection<UInt8>, entryKey: some Collection<UInt8>) throws -> [UInt8] {
        try resolve(payload, entryKey: entryKey).readAll()
    }

    fileprivate func readAll(_ value: Value) throws -> [UInt8] {
        let limit = min(maxValueSize, maxIndirectReadBytes)
        guard value.length <= UInt64(limit) else {
            let which =
                maxIndirectReadBytes <= maxValueSize
                ? "Options.maxIndirectReadBytes (\(maxIndirectReadBytes))" : "Options.maxValueSize (\(maxValueSize))"
            throw SliceError(
                .invalidArgument,
                "the value of \(Self.describe(value.entryKey)) is a chunked value of \(value.length) bytes, more than "
                    + "a whole read may return (\(which)): read it in pieces with read(_:offset:into:)")
        }
        return try [UInt8](unsafeUninitializedCapacity: Int(value.length)) { buffer, n in
            try read(value, from: 0, into: UnsafeMutableRawBufferPointer(buffer))
            n = Int(value.length)
        }
    }

    fileprivate func read(_ value: Value, from offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        let shift = UInt64(value.header.chunkShift)
        let chunkSize = UInt64(value.header.chunkSize)
        let end = offset + UInt64(buffer.count)
        var at = offset
        var out = 0
        while at < end {
            let index = at >> shift
            let chunkStart = index << shift
            let lo = at - chunkStart
            let hi = min(end - chunkStart, chunkSize)
            let piece = UnsafeMutableRawBufferPointer(rebasing: buffer[out..<(out + Int(hi - lo))])
            try readChunk(value, index, from: lo, into: piece)
            out += piece.count
            at += hi - lo
        }
    }

    /// Fills `piece` with chunk `index`'s bytes from `from` on, zeros where the chunk has none.
    private func readChunk(_ value: Value, _ index: UInt64, from: UInt64, into piece: UnsafeMutableRawBufferPointer)
        throws
    {
        let key = ChunkedValue.chunkKey(value.reference.prefix, index)
        var filled = 0
        switch try view.lookup(value.reference.keyspace, key) {
        case .found(let v):
            if from < UInt64(v.count) {
                filled = min(piece.count, v.count - Int(from))
                v.withUnsafeBytes {
                    piece.baseAddress!.copyMemory(from: $0.baseAddress! + Int(from), byteCount: filled)
                }
            }
        case .blob(let r):
            let ref = try Self.blobReference(r, value.entryKey)
            if from < ref.length {
                filled = Int(min(UInt64(piece.count), ref.length - from))
                try blobs.read(ref, from: from, into: UnsafeMutableRawBufferPointer(rebasing: piece[0..<filled]))
            }
        case .indirect:
            throw SliceError(
                .corruption,
                "chunk \(index) \(Self.describe(value.reference, key)) of \(Self.describe(value.entryKey)) "
                    + "is itself an indirect entry")
        case .deleted, .absent:
            break  // a hole
        }
        if filled < piece.count {
            UnsafeMutableRawBufferPointer(rebasing: piece[filled...]).initializeMemory(as: UInt8.self, repeating: 0)
        }
    }

    private static func blobReference(_ bytes: [UInt8], _ entryKey: [UInt8]) throws -> BlobReference {
        guard let ref = BlobReference(decoding: bytes) else {
            throw SliceError(.corruption, "malformed blob reference in the chunked value of \(describe(entryKey))")
        }
        return ref
    }

    /// An engine key (keyspace byte first) for messages: `key "a/b" in keyspace 1`, bytes that
    /// are not printable ASCII as \xNN, long keys cut.
    static func describe(_ engineKey: [UInt8]) -> String {
        guard let keyspace = engineKey.first else { return "key \"\"" }
        return describe(Keyspace(rawValue: keyspace), engineKey.dropFirst())
    }

    static func describe(_ reference: IndirectReference, _ key: [UInt8]) -> String {
        describe(reference.keyspace, key[...])
    }

    private static func describe(_ keyspace: Keyspace, _ key: ArraySlice<UInt8>) -> String {
        var s = "key \""
        for b in key.prefix(200) {
            if b >= 0x20 && b < 0x7f && b != 0x22 && b != 0x5c {
                s.unicodeScalars.append(Unicode.Scalar(b))
            } else {
                s += "\\x" + (b < 16 ? "0" : "") + String(b, radix: 16)
            }
        }
        if key.count > 200 { s += "…" }
        return s + "\" in keyspace \(keyspace.rawValue)"
    }
}
