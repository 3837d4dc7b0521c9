import CSliceKV

#if canImport(Glibc)
    import Glibc
#endif

/// The record log format shared by the write-ahead log and the MANIFEST (LevelDB's log format).
///
/// A log file is a sequence of 32 KiB blocks. Each block holds records; a record never spans a
/// block boundary, so a payload that does not fit is split into fragments:
/// ```
/// block    := record* trailer?
/// record   := checksum:fixed32  length:fixed16  type:uint8  data[length]
///   checksum = masked CRC32C of type byte ++ data
///   type     = 1 FULL | 2 FIRST | 3 MIDDLE | 4 LAST | 5 METADATA   -- on disk: do not change
/// trailer  := 0..6 zero bytes, when fewer than 7 bytes (a header) remain in the block;
///             0..23 zero bytes before a METADATA record that does not fit in the block
/// metadata := 1 syncedThrough:fixed64               the log was synced to this offset
///           | 2 logNumber:fixed64 length:fixed64    the previous log ended here, synced
/// ```
/// A payload is either one FULL record, or FIRST MIDDLE* LAST. METADATA records (always FULL,
/// never delivered as payloads; WALs only, since format 2 of the log) tell recovery how much
/// of the log was on the disk: a WAL writer adds "synced through" to the first append after
/// each sync, and a new WAL starts with the length of the one before it. Because records
/// restart at every block boundary, a reader can resynchronise after damage; see `LogReader`
/// for what counts as a torn tail and what as corruption.
enum LogFormat {
    static let blockSize = 32 * 1024
    static let headerSize = 7

    enum RecordType: UInt8 {
        case full = 1
        case first = 2
        case middle = 3
        case last = 4
        case metadata = 5
    }
}

/// What a METADATA record says (see `LogFormat`).
enum LogMetadata: Equatable {
    case syncedThrough(Int64)
    case previousLog(number: UInt64, length: Int64)

    /// The largest payload: a writer pads a block with fewer bytes than a header and this.
    static let maxEncodedSize = 17

    func encode() -> [UInt8] {
        var out: [UInt8] = []
        switch self {
        case .syncedThrough(let n):
            out.append(1)
            out.appendFixed64(UInt64(n))
        case .previousLog(let number, let length):
            out.append(2)
            out.appendFixed64(number)
            out.appendFixed64(UInt64(length))
        }
        return out
    }

    init?(decoding data: UnsafeRawBufferPointer) {
        guard let tag = data.first else { return nil }
        switch (tag, data.count) {
        case (1, 9): self = .syncedThrough(Int64(bitPattern: data.fixed64(at: 1)))
        case (2, 17):
            self = .previousLog(number: data.fixed64(at: 1), length: Int64(bitPattern: data.fixed64(at: 9)))
        default: return nil
        }
    }
}

/// Appends records to a log file. REQUIRES: one writer at a time (the WAL leader or the
/// manifest writer under the engine lock).
package final class LogWriter {
    let file: File
    /// Set when appends go through a mapping (`Options.mmapWrites`) rather than `write(2)`.
    private let mapping: AppendMapping?
    private var blockOffset: Int
    private var buffer: [UInt8] = []
    private(set) var size: Int64
    /// End of the range already handed to writeback (see `startWriteback`).
    private var writebackEnd: Int64 = 0
    /// Writeback is started for every this many new bytes.
    static let writebackInterval: Int64 = 1 << 20
    /// The directory whose fsync makes this new file's name durable, until the first `sync`
    /// does it: a synced WAL that a power cut unlinks again would lose acknowledged writes.
    private var unsyncedDirectory: String?

    /// Whether "synced through" records are written (WALs; the MANIFEST has none).
    private let marksSyncs: Bool
    /// Length at the last successful sync, and the last length a metadata record announced.
    private(set) var syncedSize: Int64 = 0
    private var announcedSize: Int64 = 0
    /// Metadata waiting for the next append.
    private var pendingMetadata: [LogMetadata] = []

    /// `newIn`: the file was just created in this directory (see `unsyncedDirectory`).
    /// `marksSyncs`: a WAL, which records how far it was synced; `previousLog`: the WAL before
    /// it and its final, synced length, recorded in its first append.
    package init(
        file: File, existingSize: Int64 = 0, mapped: Bool = false, newIn directory: String? = nil,
        marksSyncs: Bool = false, previousLog: (number: UInt64, length: Int64)? = nil
    ) {
        self.file = file
        self.unsyncedDirectory = directory
        self.marksSyncs = marksSyncs
        if let p = previousLog { pendingMetadata.append(.previousLog(number: p.number, length: p.length)) }
        mapping = mapped ? AppendMapping(file: file) : nil
        self.size = existingSize
        self.writebackEnd = existingSize
        self.blockOffset = Int(existingSize % Int64(LogFormat.blockSize))
    }

    /// Frames `payload` into records and appends them with a single `write` (after any
    /// metadata records that are due).
    func add(_ payload: UnsafeRawBufferPointer) throws {
        buffer.removeAll(keepingCapacity: true)
        let blockBefore = blockOffset
        if marksSyncs && syncedSize > announcedSize { pendingMetadata.append(.syncedThrough(syncedSize)) }
        for m in pendingMetadata {
            m.encode().withUnsafeBytes { frame($0, metadata: true) }
        }
        frame(payload, metadata: false)
        do {
            if let mapping {
                try buffer.withUnsafeBytes { try mapping.write($0, at: size) }
            } else {
                try file.append(buffer)
            }
        } catch {
            blockOffset = blockBefore
            throw error
        }
        if marksSyncs { announcedSize = max(announcedSize, syncedSize) }
        pendingMetadata = []
        size += Int64(buffer.count)
        if size - writebackEnd >= LogWriter.writebackInterval { startWriteback() }
        if buffer.capacity > 1 << 20 { buffer = [] }  // do not pin a huge value's worth of memory
    }

    /// Appends the records of one payload to `buffer`, fragmenting at block boundaries.
    private func frame(_ payload: UnsafeRawBufferPointer, metadata: Bool) {
        var remaining = payload.count
        var position = 0
        var begin = true
        repeat {
            let leftover = LogFormat.blockSize - blockOffset
            // A metadata record is never fragmented: start a new block if it does not fit.
            if leftover < LogFormat.headerSize || (metadata && leftover < LogFormat.headerSize + remaining) {
                buffer.append(contentsOf: repeatElement(0, count: leftover))
                blockOffset = 0
            }
            let available = LogFormat.blockSize - blockOffset - LogFormat.headerSize
            let fragment = min(remaining, available)
            let end = fragment == remaining
            var type: LogFormat.RecordType = begin && end ? .full : begin ? .first : end ? .last : .middle
            if metadata { type = .metadata }  // a few bytes: always fits after the padding above
            let data = UnsafeRawBufferPointer(rebasing: payload[position..<(position + fragment)])
            var crc = withUnsafeBytes(of: type.rawValue) { CRC32C.checksum($0) }
            crc = CRC32C.checksum(data, extending: crc)
            buffer.appendFixed32(CRC32C.mask(crc))
            buffer.append(UInt8(fragment & 0xff))
            buffer.append(UInt8(fragment >> 8))
            buffer.append(type.rawValue)
            buffer.append(contentsOf: data)
            blockOffset += LogFormat.headerSize + fragment
            position += fragment
            remaining -= fragment
            begin = false
        } while remaining > 0
    }

    package func add(_ payload: [UInt8]) throws {
        try payload.withUnsafeBytes { try add($0) }
    }

    /// Asks the kernel to start writing the bytes appended since the last call, without
    /// waiting (RocksDB's `wal_bytes_per_sync`). Why: a memtable switch syncs the old WAL, and
    /// with 64 MiB of dirty pages that fdatasync stalled writers for ~250 ms here; started
    /// early, little is left for it to wait for. Best effort: errors surface at the next sync.
    private func startWriteback() {
        file.layer.startWriteback(file, offset: writebackEnd, count: size - writebackEnd)
        writebackEnd = size
    }

    func sync() throws {
        let length = size
        try file.sync()
        syncedSize = length
        if let d = unsyncedDirectory {
            try file.layer.syncDirectory(d)
            unsyncedDirectory = nil
        }
    }

    /// Ends appending: a mapped log is unmapped and cut to its size (no zeros left after the
    /// last record). Nothing to do for a log written with `write(2)`.
    func finish() throws { try mapping?.finish(size: size) }

    /// Cuts the file back to `length` after a failed append, so that a partial record never
    /// sits in front of later ones (recovery would take that for corruption).
    func rollback(to length: Int64) throws {
        if mapping != nil {
            // Appends to a mapping reserve space first and then copy, so a failed one left
            // nothing behind that the next append does not overwrite.
            size = length
            blockOffset = Int(length % Int64(LogFormat.blockSize))
            return
        }
        try file.truncate(to: length)
        try file.layer.seek(file, to: length)
        size = length
        writebackEnd = min(writebackEnd, length)
        blockOffset = Int(length % Int64(LogFormat.blockSize))
    }
}
