/// Reads a file written by `LogWriter`, reassembling fragments into payloads.
///
/// What counts as damage depends on the file (see `Mode`): a torn tail is a bad or incomplete
/// record with no valid record after it, which is what a crash in the middle of an append
/// leaves; anything else is corruption, reported with the file and offset.
struct LogReader {
    enum Mode {
        /// Any damage is corruption (older WAL files, which were complete when rotated).
        case strict
        /// The newest WAL: a torn tail is dropped and reported; damage before valid records is corruption.
        case tolerateTornTail
        /// The MANIFEST: only a last record cut short by end of file is dropped. A checksum
        /// mismatch is always corruption, since every edit was synced before it took effect.
        case tolerateTruncation
    }

    struct Result {
        /// Offset of the dropped tail, if one was dropped.
        var tornTailOffset: Int64?
        var validBytes: Int64
    }

    let path: String
    let mode: Mode

    /// Calls `body` with each payload in order.
    func read(_ body: ([UInt8]) throws -> Void) throws -> Result {
        let file = try File.openForReading(path)
        let size = Int(try file.size())
        let bytes = try file.read(count: size, at: 0)
        return try bytes.withUnsafeBytes { buf in try parse(buf, body) }
    }

    private enum Damage {
        case truncated
        case bad(String)
    }

    private func parse(_ buf: UnsafeRawBufferPointer, _ body: ([UInt8]) throws -> Void) throws -> Result {
        var offset = 0
        var pending: [UInt8] = []
        var pendingStart = -1
        var lastGood = 0
        func fail(_ at: Int, _ damage: Damage) throws -> Result {
            let start = pendingStart >= 0 ? pendingStart : at
            switch (mode, damage) {
            case (.tolerateTornTail, _) where !hasValidRecord(after: at, buf):
                return Result(tornTailOffset: Int64(start), validBytes: Int64(lastGood))
            case (.tolerateTruncation, .truncated):
                return Result(tornTailOffset: Int64(start), validBytes: Int64(lastGood))
            case (_, .truncated):
                throw SliceError.corruption("log record cut short", path: path, offset: Int64(at))
            case (_, .bad(let why)):
                throw SliceError.corruption(why, path: path, offset: Int64(at))
            }
        }
        while offset < buf.count {
            let leftover = LogFormat.blockSize - offset % LogFormat.blockSize
            if leftover < LogFormat.headerSize {
                offset += leftover
                continue
            }
            guard offset + LogFormat.headerSize <= buf.count else {
                if buf[offset...].allSatisfy({ $0 == 0 }) { break }
                return try fail(offset, .truncated)
            }
            let length = Int(buf[offset + 4]) | Int(buf[offset + 5]) << 8
            let typeByte = buf[offset + 6]
            if typeByte == 0 && length == 0 && buf.fixed32(at: offset) == 0 {
                // Zeroes where a header should be: preallocated or never-written space.
                if buf[offset...].allSatisfy({ $0 == 0 }) { break }
                return try fail(offset, .bad("zeroed log record"))
            }
            guard offset + LogFormat.headerSize + length <= offset + leftover else {
                return try fail(offset, .bad("log record length \(length) crosses a block boundary"))
            }
            guard offset + LogFormat.headerSize + length <= buf.count else {
                return try fail(offset, .truncated)
            }
            let data = UnsafeRawBufferPointer(
                rebasing: buf[(offset + LogFormat.headerSize)..<(offset + LogFormat.headerSize + length)])
            let expected = CRC32C.unmask(buf.fixed32(at: offset))
            let actual = CRC32C.checksum(data, extending: withUnsafeBytes(of: typeByte) { CRC32C.checksum($0) })
            guard expected == actual else { return try fail(offset, .bad("log record checksum mismatch")) }
            guard let type = LogFormat.RecordType(rawValue: typeByte) else {
                return try fail(offset, .bad("unknown log record type \(typeByte)"))
            }
            switch type {
            case .full:
                guard pendingStart < 0 else { return try fail(offset, .bad("FULL record inside a fragmented one")) }
                try body(Array(data))
                lastGood = offset + LogFormat.headerSize + length
            case .first:
                guard pendingStart < 0 else { return try fail(offset, .bad("FIRST record inside a fragmented one")) }
                pendingStart = offset
                pending = Array(data)
            case .middle, .last:
                guard pendingStart >= 0 else { return try fail(offset, .bad("continuation record without a start")) }
                pending.append(contentsOf: data)
                if type == .last {
                    let payload = pending
                    pending = []
                    pendingStart = -1
                    try body(payload)
                    lastGood = offset + LogFormat.headerSize + length
                }
            }
            offset += LogFormat.headerSize + length
        }
        if pendingStart >= 0 { return try fail(pendingStart, .truncated) }
        return Result(tornTailOffset: nil, validBytes: Int64(lastGood))
    }

    /// Whether a record with a good checksum starts anywhere after `offset`: at a later block
    /// boundary, or right after the damaged record if its length field is plausible.
    private func hasValidRecord(after offset: Int, _ buf: UnsafeRawBufferPointer) -> Bool {
        func validAt(_ p: Int) -> Bool {
            guard p + LogFormat.headerSize <= buf.count else { return false }
            let length = Int(buf[p + 4]) | Int(buf[p + 5]) << 8
            let typeByte = buf[p + 6]
            guard (1...4).contains(typeByte), p + LogFormat.headerSize + length <= buf.count else { return false }
            let data = UnsafeRawBufferPointer(
                rebasing: buf[(p + LogFormat.headerSize)..<(p + LogFormat.headerSize + length)])
            let crc = CRC32C.checksum(data, extending: withUnsafeBytes(of: typeByte) { CRC32C.checksum($0) })
            return CRC32C.unmask(buf.fixed32(at: p)) == crc
        }
        if offset + LogFormat.headerSize <= buf.count {
            let length = Int(buf[offset + 4]) | Int(buf[offset + 5]) << 8
            let next = offset + LogFormat.headerSize + length
            if next > offset + LogFormat.headerSize, validAt(next) { return true }
        }
        var block = (offset / LogFormat.blockSize + 1) * LogFormat.blockSize
        while block < buf.count {
            if validAt(block) { return true }
            block += LogFormat.blockSize
        }
        return false
    }
}
