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
///   type     = 1 FULL | 2 FIRST | 3 MIDDLE | 4 LAST        -- on disk: do not change
/// trailer  := 0..6 zero bytes, when fewer than 7 bytes (a header) remain in the block
/// ```
/// A payload is either one FULL record, or FIRST MIDDLE* LAST. Because records restart at every
/// block boundary, a reader can resynchronise after damage and tell a torn tail (nothing valid
/// after it) from corruption in the middle (valid records after it); see `LogReader`.
enum LogFormat {
    static let blockSize = 32 * 1024
    static let headerSize = 7

    enum RecordType: UInt8 {
        case full = 1
        case first = 2
        case middle = 3
        case last = 4
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

    package init(file: File, existingSize: Int64 = 0, mapped: Bool = false) {
        self.file = file
        mapping = mapped ? AppendMapping(file: file) : nil
        self.size = existingSize
        self.writebackEnd = existingSize
        self.blockOffset = Int(existingSize % Int64(LogFormat.blockSize))
    }

    /// Frames `payload` into records and appends them with a single `write`.
    func add(_ payload: UnsafeRawBufferPointer) throws {
        buffer.removeAll(keepingCapacity: true)
        var remaining = payload.count
        var position = 0
        var begin = true
        repeat {
            let leftover = LogFormat.blockSize - blockOffset
            if leftover < LogFormat.headerSize {
                buffer.append(contentsOf: repeatElement(0, count: leftover))
                blockOffset = 0
            }
            let available = LogFormat.blockSize - blockOffset - LogFormat.headerSize
            let fragment = min(remaining, available)
            let end = fragment == remaining
            let type: LogFormat.RecordType = begin && end ? .full : begin ? .first : end ? .last : .middle
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
        if let mapping {
            try buffer.withUnsafeBytes { try mapping.write($0, at: size) }
        } else {
            try file.append(buffer)
        }
        size += Int64(buffer.count)
        if size - writebackEnd >= LogWriter.writebackInterval { startWriteback() }
        if buffer.capacity > 1 << 20 { buffer = [] }  // do not pin a huge value's worth of memory
    }

    package func add(_ payload: [UInt8]) throws {
        try payload.withUnsafeBytes { try add($0) }
    }

    /// Asks the kernel to start writing the bytes appended since the last call, without
    /// waiting (RocksDB's `wal_bytes_per_sync`). Why: a memtable switch syncs the old WAL, and
    /// with 64 MiB of dirty pages that fdatasync stalled writers for ~250 ms here; started
    /// early, little is left for it to wait for. Best effort: errors surface at the next sync.
    private func startWriteback() {
        _ = slice_start_writeback(file.fd, writebackEnd, size - writebackEnd)
        writebackEnd = size
    }

    func sync() throws { try file.sync() }

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
        guard lseek(file.fd, off_t(length), SEEK_SET) >= 0 else {
            throw SliceError.io("lseek failed", path: file.path)
        }
        size = length
        writebackEnd = min(writebackEnd, length)
        blockOffset = Int(length % Int64(LogFormat.blockSize))
    }
}
