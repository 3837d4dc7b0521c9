import Synchronization

/// A key and its value, as returned by scans.
public struct KeyValue: Sendable, Hashable {
    public let key: [UInt8]
    public let value: [UInt8]

    public init(key: [UInt8], value: [UInt8]) {
        self.key = key
        self.value = value
    }

    public var keyString: String { String(decoding: key, as: UTF8.self) }
    public var valueString: String { String(decoding: value, as: UTF8.self) }
}

/// The range a scan covers: `[start, end)` and/or every key with a prefix.
public struct KeyRange: Sendable {
    public var start: [UInt8]?
    public var end: [UInt8]?

    public init(start: [UInt8]? = nil, end: [UInt8]? = nil) {
        self.start = start
        self.end = end
    }

    /// Every key that begins with `prefix`.
    public static func prefix(_ prefix: [UInt8]) -> KeyRange {
        KeyRange(start: prefix, end: prefixSuccessor(prefix))
    }

    public static let all = KeyRange()

    /// The smallest key greater than every key with `prefix` (nil: no bound).
    static func prefixSuccessor(_ prefix: [UInt8]) -> [UInt8]? {
        var p = prefix
        while let last = p.last {
            if last < 0xff {
                p[p.count - 1] = last + 1
                return p
            }
            p.removeLast()
        }
        return nil
    }
}

/// A forward cursor over the live keys of one keyspace as of the moment it was created.
/// Keys it returns are without the keyspace byte.
///
/// It sees one consistent version of the data: writes that start after it was created are
/// invisible (it filters by sequence number), and the table files it reads stay on disk until
/// it is released. Deleted keys and older versions are hidden. `next()` throws on corruption.
/// Thread-safety: a cursor may be handed between threads, one caller at a time (a mutex
/// enforces it).
public final class ScanCursor: Sendable {
    private struct State {
        let merged: MergingIterator
        let sequence: SequenceNumber
        let end: [UInt8]?
        var started = false
        /// A forward `forEach` stopped by its body leaves the merge on the entry it delivered
        /// and moves past it only when the cursor is used again (a seek that reads one entry
        /// then never pays for the step).
        var pendingNext = false
        var start: [UInt8]?
        var lastUserKey: [UInt8] = []
        var haveLast = false
        var done = false
        // Keeps the version (and so its files) alive while the cursor lives.
        let version: Version
        let blobs: BlobStore
        /// Resolves indirect entries at the cursor's sequence number, through the same view.
        let chunks: ChunkedValueReader
        var scratch: [UInt8] = []
        /// Reverse scans: newest-last order means the entry to return for a user key is known
        /// only once the cursor has moved past all its versions; it waits in these buffers
        /// (reused, so a step allocates nothing).
        let reverse: Bool
        var haveSaved = false
        var savedKind = ValueKind.deletion
        var savedKey: [UInt8] = []
        var savedValue: [UInt8] = []
    }

    private let state: Locked<State>

    init(
        merged: sending MergingIterator, sequence: SequenceNumber, range: KeyRange, version: Version, blobs: BlobStore,
        chunks: ChunkedValueReader, reverse: Bool = false
    ) {
        state = Locked(
            State(
                merged: merged, sequence: sequence, end: range.end, start: range.start, version: version, blobs: blobs,
                chunks: chunks, reverse: reverse))
    }

    /// Positions the merged iterator at the start of the range (its end, in reverse) on first use.
    private static func startIfNeeded(_ s: inout State) throws {
        guard !s.started else { return }
        s.started = true
        if s.reverse {
            if let end = s.end {
                try s.merged.seek(makeInternalKey(end, maxSequenceNumber, .forSeek))
                if s.merged.isValid { try s.merged.prev() } else { try s.merged.seekToLast() }
            } else {
                try s.merged.seekToLast()
            }
            return
        }
        if let start = s.start {
            try s.merged.seek(makeInternalKey(start, maxSequenceNumber, .forSeek))
        } else {
            try s.merged.seekToFirst()
        }
    }

    /// The next live entry, or nil at the end of the range.
    public func next() throws -> KeyValue? {
        guard let (key, value) = try advance(values: true) else { return nil }
        return KeyValue(key: key, value: value)
    }

    /// The next live key without its value (large values are not read), or nil at the end.
    public func nextKey() throws -> [UInt8]? {
        try advance(values: false)?.key
    }

    private func advance(values: Bool) throws -> (key: [UInt8], value: [UInt8])? {
        try state.withLock { s in
            if s.done { return nil }
            try ScanCursor.startIfNeeded(&s)
            if s.pendingNext {
                s.pendingNext = false
                try s.merged.next()
            }
            if s.reverse {
                var out: (key: [UInt8], value: [UInt8])?
                _ = try ScanCursor.stepBackward(&s, values: values) { k, v in out = (Array(k), Array(v)) }
                return out
            }
            let merged = s.merged
            while merged.isValid {
                let key = merged.keyBytes
                guard let p = ParsedInternalKey(key) else {
                    throw SliceError(.corruption, "malformed internal key in scan")
                }
                if p.sequence > s.sequence
                    || (s.haveLast && s.lastUserKey.withUnsafeBytes { compareBytes($0, p.userKey) == 0 })
                {
                    try merged.next()
                    continue
                }
                if let end = s.end, end.withUnsafeBytes({ compareBytes(p.userKey, $0) >= 0 }) {
                    s.done = true
                    return nil
                }
                s.lastUserKey.assign(p.userKey)
                s.haveLast = true
                let value: [UInt8]?
                switch p.kind {
                case .value: value = values ? Array(s.merged.valueBytes) : []
                case .blobReference:
                    value = values ? try s.blobs.readAll(try ScanCursor.reference(s.merged.valueBytes)) : []
                case .indirect:
                    value = values ? try s.chunks.readAll(s.merged.valueBytes, entryKey: p.userKey) : []
                case .deletion: value = nil
                }
                try s.merged.next()
                if let value { return (Array(s.lastUserKey[1...]), value) }
            }
            s.done = true
            return nil
        }
    }

    /// Calls `body` with each live entry's key and value bytes, without copying them, until it
    /// returns false or the range ends. The buffers are valid only during the call. With
    /// `values: false` the value buffer is always empty and large values are not read.
    public func forEach(values: Bool = true, _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool)
        throws
    {
        try state.withLock { s in
            if s.done { return }
            try ScanCursor.startIfNeeded(&s)
            if s.reverse {
                var more = true
                while more, try ScanCursor.stepBackward(&s, values: values, { k, v in more = try body(k, v) }) {}
                return
            }
            let merged = s.merged
            if s.pendingNext {
                s.pendingNext = false
                try merged.next()
            }
            while merged.isValid {
                // nil: not visible; false: past the end; true: delivered.
                var wantsMore = true
                let delivered: Bool? = try { () throws -> Bool? in
                    guard let p = ParsedInternalKey(merged.keyBytes) else {
                        throw SliceError(.corruption, "malformed internal key in scan")
                    }
                    if p.sequence > s.sequence { return nil }
                    if s.haveLast && s.lastUserKey.withUnsafeBytes({ compareBytes($0, p.userKey) == 0 }) { return nil }
                    if let end = s.end, end.withUnsafeBytes({ compareBytes(p.userKey, $0) >= 0 }) { return false }
                    s.lastUserKey.assign(p.userKey)
                    s.haveLast = true
                    if p.kind == .deletion { return nil }
                    if p.kind == .blobReference || p.kind == .indirect || !values {
                        guard values else {
                            wantsMore = try body(
                                UnsafeRawBufferPointer(rebasing: p.userKey[1...]),
                                UnsafeRawBufferPointer(start: nil, count: 0))
                            return true
                        }
                        s.scratch =
                            p.kind == .indirect
                            ? try s.chunks.readAll(merged.valueBytes, entryKey: p.userKey)
                            : try s.blobs.readAll(try ScanCursor.reference(merged.valueBytes))
                        wantsMore = try s.scratch.withUnsafeBytes {
                            try body(UnsafeRawBufferPointer(rebasing: p.userKey[1...]), $0)
                        }
                        return true
                    }
                    wantsMore = try body(UnsafeRawBufferPointer(rebasing: p.userKey[1...]), merged.valueBytes)
                    return true
                }()
                if delivered == false { break }
                if !wantsMore {
                    s.pendingNext = true
                    return
                }
                try merged.next()
            }
            s.done = true
        }
    }

    /// One step of a reverse scan: hands the next live entry (key without its keyspace byte)
    /// to `emit` and returns true, or returns false at the start of the range. Moving
    /// backwards, a user key's versions come oldest first, so the newest visible one waits in
    /// the saved buffers until the cursor reaches an older user key (or the range's start).
    private static func stepBackward(
        _ s: inout State, values: Bool, _ emit: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Void
    ) throws -> Bool {
        /// Emits the saved entry unless it is a deletion; whether it emitted.
        func emitSaved(_ s: inout State) throws -> Bool {
            s.haveSaved = false
            switch s.savedKind {
            case .deletion: return false
            case .value:
                try s.savedKey.withUnsafeBytes { k in
                    try s.savedValue.withUnsafeBytes { try emit(UnsafeRawBufferPointer(rebasing: k[1...]), $0) }
                }
            case .blobReference:
                let value = values ? try s.blobs.readAll(try s.savedValue.withUnsafeBytes { try reference($0) }) : []
                try s.savedKey.withUnsafeBytes { k in
                    try value.withUnsafeBytes { try emit(UnsafeRawBufferPointer(rebasing: k[1...]), $0) }
                }
            case .indirect:
                let value = values ? try s.chunks.readAll(s.savedValue, entryKey: s.savedKey) : []
                try s.savedKey.withUnsafeBytes { k in
                    try value.withUnsafeBytes { try emit(UnsafeRawBufferPointer(rebasing: k[1...]), $0) }
                }
            }
            return true
        }
        let merged = s.merged
        while merged.isValid {
            guard let p = ParsedInternalKey(merged.keyBytes) else {
                throw SliceError(.corruption, "malformed internal key in scan")
            }
            if let b = s.start, b.withUnsafeBytes({ compareBytes(p.userKey, $0) < 0 }) { break }
            if p.sequence > s.sequence {
                try merged.prev()
                continue
            }
            if s.haveSaved && s.savedKey.withUnsafeBytes({ compareBytes($0, p.userKey) != 0 }) {
                // Crossing into an older user key: the saved one is complete. The current entry
                // stays unconsumed for the next step.
                if try emitSaved(&s) { return true }
            }
            // A newer version of the same user key replaces the saved one.
            s.savedKey.assign(p.userKey)
            s.savedValue.assign(
                values || p.kind == .blobReference ? merged.valueBytes : UnsafeRawBufferPointer(start: nil, count: 0))
            s.savedKind = p.kind
            s.haveSaved = true
            try merged.prev()
        }
        s.done = true
        if s.haveSaved { return try emitSaved(&s) }
        return false
    }

    private static func reference(_ bytes: UnsafeRawBufferPointer) throws -> BlobReference {
        guard let ref = BlobReference(decoding: bytes) else {
            throw SliceError(.corruption, "malformed blob reference in scan")
        }
        return ref
    }

    /// Up to `limit` entries (used by the async sequence to amortise thread hops).
    public func next(batch limit: Int) throws -> [KeyValue] {
        var out: [KeyValue] = []
        out.reserveCapacity(limit)
        while out.count < limit, let kv = try next() { out.append(kv) }
        return out
    }
}
