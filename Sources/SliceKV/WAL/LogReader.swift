import CSliceKV

/// Reads a file written by `LogWriter`, reassembling fragments into payloads, and decides what
/// damage means for this file.
///
/// A crash leaves the end of a log **unwritten**, never rewritten: the file ends inside the
/// last record (a short `write`), or the bytes that never reached the disk read as zeros
/// (preallocated or mapped space, sectors a power cut lost). A record whose full length is
/// present but whose checksum fails, with no zeros to explain it, is **damage**.
///
/// How far a log was synced is known from its metadata records (`LogFormat.RecordType.metadata`:
/// "synced through offset S", written with the first append after each sync) and from outside
/// (`knownSyncedLength`: the length recorded at a clean close or at the switch to the next
/// log). Bytes below that length were on the disk, so anything wrong there — damage, zeros, a
/// file cut short — is corruption whatever the mode, except in the lenient modes the user
/// chooses (`pointInTime`, `skipDamaged`).
///
/// Each read makes two passes over the file: the first finds damage and the synced length
/// (metadata records after a damaged stretch count too), the second delivers payloads.
struct LogReader {
    enum Mode: Sendable {
        /// Any damage, and any file shorter than its synced length, is corruption (older WALs,
        /// which were complete and synced when the next one started; `.absoluteConsistency`).
        case strict
        /// The newest WAL (default): an unwritten tail past the synced length is dropped and
        /// reported; damage, or anything missing below the synced length, is corruption.
        case tolerateTornTail
        /// Replay stops at the first damage of any kind; the rest is dropped and reported.
        case pointInTime
        /// Damaged records are skipped and reported; replay goes on after them.
        case skipDamaged
        /// The MANIFEST: only a last record cut short by end of file is dropped. A checksum
        /// mismatch is always corruption, since every edit was synced before it took effect.
        case tolerateTruncation
    }

    /// A stretch of the file that recovery did not replay.
    struct Dropped: Sendable, Equatable {
        var offset: Int64
        var bytes: Int64
        var reason: String
    }

    struct Result {
        /// Offset of the dropped unwritten tail, if one was dropped.
        var tornTailOffset: Int64?
        /// Stretches dropped by `pointInTime` or `skipDamaged` (damage, not a torn tail).
        var dropped: [Dropped] = []
        var validBytes: Int64
        /// The largest synced length known for this file (its own records and `knownSyncedLength`).
        var syncedLength: Int64 = 0
        /// What the log's first record says of the log before it: (number, length when it ended).
        var previousLog: (number: UInt64, length: Int64)?
    }

    /// Thrown by a `read` body to end replay at the record it was given, as if the log ended
    /// there (a record that refers to blob bytes that never reached the disk). Past the synced
    /// length that is a torn tail; below it, corruption.
    struct EndOfDurableLog: Error {
        let reason: String
    }

    let path: String
    let mode: Mode
    let layer: any FileLayer
    /// A length the file is known to have been synced to (see the type's doc).
    var knownSyncedLength: Int64 = 0

    init(path: String, mode: Mode, layer: any FileLayer, knownSyncedLength: Int64 = 0) {
        self.path = path
        self.mode = mode
        self.layer = layer
        self.knownSyncedLength = knownSyncedLength
    }

    /// Calls `body` with each payload in order.
    func read(_ body: ([UInt8]) throws -> Void) throws -> Result {
        try read(withOffsets: { payload, _ in try body(payload) })
    }

    /// Calls `body` with each payload and the offset of its first record.
    func read(withOffsets body: ([UInt8], Int64) throws -> Void) throws -> Result {
        let file = try layer.openForReading(path)
        let size = Int(try file.size())
        let bytes = try file.read(count: size, at: 0)
        return try bytes.withUnsafeBytes { buf in try replay(buf, body) }
    }

    /// What the first record of a WAL says of the log before it (read from its first block only).
    static func previousLog(of path: String, layer: any FileLayer) throws -> (number: UInt64, length: Int64)? {
        let file = try layer.openForReading(path)
        let bytes = try file.read(count: Int(min(try file.size(), Int64(LogFormat.blockSize))), at: 0)
        return bytes.withUnsafeBytes { buf in
            var scanner = LogScanner(buf: buf)
            while case .record(let r) = scanner.next(), r.type == LogFormat.RecordType.metadata.rawValue {
                if case .previousLog(let n, let l) = LogMetadata(
                    decoding: UnsafeRawBufferPointer(rebasing: buf[r.data]))
                {
                    return (n, l)
                }
            }
            return nil
        }
    }

    // MARK: Pass 1: damage and synced length

    private struct Damage {
        var offset: Int
        /// Where the damaged record would end (capped at end of file).
        var end: Int
        var truncated: Bool
        var reason: String
    }

    private struct Survey {
        var damages: [Damage] = []
        var synced = 0
        var previousLog: (UInt64, Int64)?
        /// End of the last physical record with a good checksum.
        var lastGoodEnd = 0
        /// Whether a good record follows the first damage.
        var recordAfterDamage = false
    }

    private func survey(_ buf: UnsafeRawBufferPointer) -> Survey {
        var s = Survey()
        var scanner = LogScanner(buf: buf)
        while true {
            switch scanner.next() {
            case .end: return s
            case .record(let r):
                if !s.damages.isEmpty { s.recordAfterDamage = true }
                s.lastGoodEnd = r.offset + LogFormat.headerSize + r.data.count
                if r.type == LogFormat.RecordType.metadata.rawValue,
                    let m = LogMetadata(decoding: UnsafeRawBufferPointer(rebasing: buf[r.data]))
                {
                    switch m {
                    case .syncedThrough(let n): s.synced = max(s.synced, Int(clamping: n))
                    case .previousLog(let number, let length): s.previousLog = (number, length)
                    }
                }
            case .damage(let d):
                s.damages.append(Damage(offset: d.offset, end: d.end, truncated: d.truncated, reason: d.reason))
            }
        }
    }

    /// Whether the damaged record looks like bytes that never reached the disk: the file ends
    /// inside it; a whole zeroed 512-byte sector overlaps it; it is followed by nothing but
    /// zeros from a sector boundary inside it on; or, in preallocated space (a mapped WAL,
    /// zeros after the record, nothing valid after it), it holds zero bytes that were never
    /// copied (a copy cut short by a crash, in whatever order memcpy stored). A flipped byte
    /// does none of these, unless the record's own data has a run of zeros, which is why bytes
    /// below the synced length are never judged this way.
    private func looksUnwritten(_ d: Damage, _ buf: UnsafeRawBufferPointer, recordAfter: Bool) -> Bool {
        if d.truncated { return true }
        let sector = 512
        // Start of the zeros that end the file (found a sector at a time, then byte by byte).
        var zeroRunStart = buf.count
        while zeroRunStart - sector >= d.offset && slice_is_zero(buf.baseAddress! + zeroRunStart - sector, sector) != 0
        {
            zeroRunStart -= sector
        }
        while zeroRunStart > d.offset && buf[zeroRunStart - 1] == 0 { zeroRunStart -= 1 }
        // The zeros at the end of the file cover a sector boundary inside the record.
        if zeroRunStart <= d.offset || (zeroRunStart + sector - 1) / sector * sector < d.end { return true }
        // A mapped WAL (zeros preallocated after its end) whose last copy was cut short.
        if zeroRunStart < d.end && buf.count > d.end { return true }
        // The same when the copy did not go front to back (memcpy may store the end of a
        // buffer first, so a kill can leave the header still zero and later bytes written):
        // nothing valid after the damage, zeros to the end of the file, and a run of at least
        // 8 zero bytes (never copied) in what lies between.
        if !recordAfter && zeroRunStart < buf.count {
            var run = 0
            for i in d.offset..<zeroRunStart {
                run = buf[i] == 0 ? run + 1 : 0
                if run >= 8 { return true }
            }
        }
        // A zeroed sector overlapping the record (a lost sector with later ones kept).
        var p = d.offset / sector * sector
        while p < d.end && p + sector <= buf.count {
            if slice_is_zero(buf.baseAddress! + p, sector) != 0 { return true }
            p += sector
        }
        return false
    }

    // MARK: Pass 2: payloads

    private func replay(_ buf: UnsafeRawBufferPointer, _ body: ([UInt8], Int64) throws -> Void) throws -> Result {
        let s = survey(buf)
        let synced = max(s.synced, Int(clamping: knownSyncedLength))
        var result = Result(validBytes: 0, syncedLength: Int64(synced), previousLog: s.previousLog)
        func corruption(_ why: String, at offset: Int) -> SliceError {
            SliceError.corruption(why, path: path, offset: Int64(offset))
        }

        // Where replay stops (end of file unless damage decides otherwise), and what is skipped.
        var stop = buf.count
        var skip: [Damage] = []
        if let first = s.damages.first {
            switch mode {
            case .strict:
                throw corruption(first.truncated ? "log record cut short" : first.reason, at: first.offset)
            case .tolerateTruncation:
                guard first.truncated else { throw corruption(first.reason, at: first.offset) }
                stop = first.offset
                result.tornTailOffset = Int64(first.offset)
            case .tolerateTornTail:
                if first.offset < synced {
                    throw corruption(
                        "\(first.truncated ? "log record cut short" : first.reason) below the synced length \(synced)",
                        at: first.offset)
                }
                guard looksUnwritten(first, buf, recordAfter: s.recordAfterDamage) else {
                    throw corruption(
                        "\(first.reason) in a complete record (damage, not an unfinished write)", at: first.offset)
                }
                stop = first.offset
                result.tornTailOffset = Int64(first.offset)
            case .pointInTime:
                stop = first.offset
                result.dropped.append(
                    Dropped(offset: Int64(first.offset), bytes: Int64(buf.count - first.offset), reason: first.reason))
            case .skipDamaged:
                skip = s.damages
                for d in skip {
                    result.dropped.append(
                        Dropped(offset: Int64(d.offset), bytes: Int64(d.end - d.offset), reason: d.reason))
                }
            }
        }
        // A log cut short below its synced length, at a record boundary (no damage to see).
        let present = s.damages.first.map { $0.offset } ?? s.lastGoodEnd
        if present < synced {
            switch mode {
            case .strict, .tolerateTornTail, .tolerateTruncation:
                throw corruption(
                    "the log ends at \(present) but was synced to \(synced): it was cut short", at: present)
            case .pointInTime, .skipDamaged:
                if result.dropped.isEmpty {
                    result.dropped.append(
                        Dropped(offset: Int64(present), bytes: Int64(synced - present), reason: "log cut short"))
                }
            }
        }

        var scanner = LogScanner(buf: buf)
        var pending: [UInt8] = []
        var pendingStart = -1
        var lastGood = 0
        func structural(_ why: String, _ at: Int) throws {
            switch mode {
            case .skipDamaged:
                result.dropped.append(Dropped(offset: Int64(at), bytes: 0, reason: why))
                pending = []
                pendingStart = -1
            default: throw corruption(why, at: at)
            }
        }
        loop: while true {
            let step = scanner.next()
            let offset: Int
            switch step {
            case .end: break loop
            case .record(let r): offset = r.offset
            case .damage(let d): offset = d.offset
            }
            if offset >= stop { break }
            guard case .record(let r) = step else {
                // Only `skipDamaged` gets here: drop any fragments collected before the damage.
                pending = []
                pendingStart = -1
                continue
            }
            let type = LogFormat.RecordType(rawValue: r.type)!
            let data = UnsafeRawBufferPointer(rebasing: buf[r.data])
            var payload: [UInt8]?
            var start = r.offset
            switch type {
            case .metadata:
                lastGood = r.offset + LogFormat.headerSize + r.data.count
                continue
            case .full:
                if pendingStart >= 0 { try structural("FULL record inside a fragmented one", r.offset) }
                payload = Array(data)
            case .first:
                if pendingStart >= 0 { try structural("FIRST record inside a fragmented one", r.offset) }
                pendingStart = r.offset
                pending = Array(data)
            case .middle, .last:
                guard pendingStart >= 0 else {
                    try structural("continuation record without a start", r.offset)
                    continue
                }
                pending.append(contentsOf: data)
                if type == .last {
                    payload = pending
                    start = pendingStart
                    pending = []
                    pendingStart = -1
                }
            }
            if let payload {
                do {
                    try body(payload, Int64(start))
                } catch let e as EndOfDurableLog {
                    if start < synced { throw corruption("\(e.reason), below the synced length \(synced)", at: start) }
                    switch mode {
                    case .strict, .tolerateTruncation:
                        throw corruption(e.reason, at: start)
                    case .tolerateTornTail:
                        result.tornTailOffset = Int64(start)
                    case .pointInTime, .skipDamaged:
                        result.dropped.append(
                            Dropped(offset: Int64(start), bytes: Int64(buf.count - start), reason: e.reason))
                    }
                    result.validBytes = Int64(lastGood)
                    return result
                }
                lastGood = r.offset + LogFormat.headerSize + r.data.count
            }
        }
        if pendingStart >= 0 {
            // The file (or the replayed part) ends inside a fragmented payload.
            switch mode {
            case .strict: throw corruption("log record cut short", at: pendingStart)
            case .tolerateTruncation, .tolerateTornTail:
                if pendingStart < synced {
                    throw corruption("log record cut short below the synced length", at: pendingStart)
                }
                result.tornTailOffset = result.tornTailOffset ?? Int64(pendingStart)
            case .pointInTime, .skipDamaged:
                result.dropped.append(
                    Dropped(
                        offset: Int64(pendingStart), bytes: Int64(stop - pendingStart), reason: "unfinished payload"))
            }
        }
        result.validBytes = Int64(lastGood)
        return result

    }
}

/// Walks the physical records of a log, resynchronising after damage (at the end of the
/// damaged record when its length is plausible, else at the next block boundary).
struct LogScanner {
    struct Record {
        var offset: Int
        var type: UInt8
        var data: Range<Int>
    }

    struct Damage {
        var offset: Int
        var end: Int
        var truncated: Bool
        var reason: String
    }

    enum Step {
        case record(Record)
        case damage(Damage)
        case end
    }

    let buf: UnsafeRawBufferPointer
    private var offset = 0

    init(buf: UnsafeRawBufferPointer) { self.buf = buf }

    private func allZero(from p: Int) -> Bool { slice_is_zero(buf.baseAddress! + p, buf.count - p) != 0 }

    private mutating func damage(_ at: Int, end: Int, truncated: Bool, _ why: String) -> Step {
        let blockEnd = (at / LogFormat.blockSize + 1) * LogFormat.blockSize
        offset = end > at + LogFormat.headerSize && end <= blockEnd ? end : blockEnd
        return .damage(Damage(offset: at, end: min(end, buf.count), truncated: truncated, reason: why))
    }

    mutating func next() -> Step {
        while offset < buf.count {
            let leftover = LogFormat.blockSize - offset % LogFormat.blockSize
            if leftover < LogFormat.headerSize {
                offset += leftover
                continue
            }
            let at = offset
            guard at + LogFormat.headerSize <= buf.count else {
                if allZero(from: at) { return .end }
                return damage(at, end: buf.count, truncated: true, "log record header cut short")
            }
            let length = Int(buf[at + 4]) | Int(buf[at + 5]) << 8
            let typeByte = buf[at + 6]
            let end = at + LogFormat.headerSize + length
            if typeByte == 0 && length == 0 && buf.fixed32(at: at) == 0 {
                // Zeros where a header should be: preallocated or never-written space.
                if allZero(from: at) { return .end }
                // The padding a writer leaves when a metadata record does not fit in the rest
                // of the block (shorter than a header and the largest metadata record, so never
                // a whole lost sector).
                if leftover < LogFormat.headerSize + LogMetadata.maxEncodedSize
                    && slice_is_zero(buf.baseAddress! + at, min(leftover, buf.count - at)) != 0
                {
                    offset = at + leftover
                    continue
                }
                return damage(at, end: at + LogFormat.headerSize, truncated: false, "zeroed log record")
            }
            guard end <= at + leftover else {
                return damage(
                    at, end: at + leftover, truncated: false, "log record length \(length) crosses a block boundary")
            }
            guard end <= buf.count else { return damage(at, end: end, truncated: true, "log record cut short") }
            let data = UnsafeRawBufferPointer(rebasing: buf[(at + LogFormat.headerSize)..<end])
            let expected = CRC32C.unmask(buf.fixed32(at: at))
            let actual = CRC32C.checksum(data, extending: withUnsafeBytes(of: typeByte) { CRC32C.checksum($0) })
            guard expected == actual else {
                return damage(at, end: end, truncated: false, "log record checksum mismatch")
            }
            guard LogFormat.RecordType(rawValue: typeByte) != nil else {
                return damage(at, end: end, truncated: false, "unknown log record type \(typeByte)")
            }
            offset = end
            return .record(Record(offset: at, type: typeByte, data: (at + LogFormat.headerSize)..<end))
        }
        return .end
    }
}
