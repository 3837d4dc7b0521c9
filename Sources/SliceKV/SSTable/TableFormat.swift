/// The SSTable file format (one file per table, immutable once written).
///
/// ```
/// table      := dataBlock* filterBlock? propertiesBlock metaindexBlock indexBlock footer
/// every block is followed by its trailer:
///   trailer  := compression:uint8  checksum:fixed32
///   compression = 0 none, 1 LZ4, 2 zstd (`Compression`; the stored bytes of a compressed
///               block are laid out in BlockCompression.swift); only data blocks are
///               compressed, and only in tables of format version 2
///   checksum  = masked CRC32C of the stored block bytes ++ compression byte
/// dataBlock  := BlockBuilder block of (internal key -> value), ~blockSize bytes before
///               compression
/// filterBlock:= BlockedBloomFilter (tables written before it: BloomFilter) over the
///               table's user keys and, when the property
///               "filter.prefixes" is 1, over every key prefix that ends in a '/' byte
///               (for `a/b/c`: `a/` and `a/b/`, keyspace byte included), so a directory
///               check can skip tables without a key below that directory
/// properties := BlockBuilder block of (name -> varint), see `TableProperties`; names sorted
///               bytewise; "blob.files" -> n and, for each blob file the table refers to,
///               "blob.<file number>" -> bytes of its records the table's references cover
/// metaindex  := BlockBuilder block: "filter.blocked512" (or, in older tables,
///               "filter.bloom64") -> handle, "properties" -> handle
/// indexBlock := BlockBuilder block: last internal key of data block i -> handle of block i
/// handle     := offset:varint  size:varint   (stored size, excluding the 5-byte trailer)
/// footer     := metaindex offset:fixed64 size:fixed64  index offset:fixed64 size:fixed64
///               formatVersion:fixed32  checksum:fixed32  magic:fixed64       (48 bytes)
///   checksum  = masked CRC32C of the 36 bytes before it
///   magic     = 0x534c_4943_4553_5354 ("SLICESST")      -- on disk: do not change
///   formatVersion: 1 = no compressed blocks (written before compression existed),
///               2 = data blocks may be compressed; readers accept both
/// ```
enum TableFormat {
    static let magic: UInt64 = 0x534c_4943_4553_5354
    static let formatVersion: UInt32 = 2
    /// Versions this reader opens.
    static let readableVersions: ClosedRange<UInt32> = 1...2
    static let footerSize = 48
    static let trailerSize = 5
    /// The classic `BloomFilter`, read in tables written before the blocked one.
    static let filterName = Array("filter.bloom64".utf8)
    static let blockedFilterName = Array("filter.blocked512".utf8)
    static let propertiesName = Array("properties".utf8)
}

struct BlockHandle: Equatable {
    var offset: UInt64
    var size: UInt64

    func encode(into out: inout [UInt8]) {
        out.appendVarint(offset)
        out.appendVarint(size)
    }

    var encoded: [UInt8] {
        var out: [UInt8] = []
        encode(into: &out)
        return out
    }

    static func decode(_ buf: UnsafeRawBufferPointer) -> BlockHandle? {
        var p = 0
        guard let o = buf.varint(at: &p), let s = buf.varint(at: &p) else { return nil }
        return BlockHandle(offset: o, size: s)
    }
}

/// Counts recorded in each table's properties block.
struct TableProperties: Sendable, Equatable {
    var entries: UInt64 = 0
    var deletions: UInt64 = 0
    var rawKeyBytes: UInt64 = 0
    var rawValueBytes: UInt64 = 0
    var dataBlocks: UInt64 = 0
    var smallestSequence: UInt64 = .max
    var largestSequence: UInt64 = 0
    /// Entries that are older versions of a key that appears earlier in the same table (kept
    /// for a snapshot): a manual compaction rewrites such tables once the snapshot is gone.
    var olderVersions: UInt64 = 0
    /// 1 when the filter also holds the keys' '/'-ended prefixes (tables written before this
    /// property existed lack it: their filter cannot answer prefix questions).
    var filterPrefixes: UInt64 = 0
    /// Data block bytes before and after compression (0 in tables written before compression:
    /// there stored equals raw).
    var dataRawBytes: UInt64 = 0
    var dataStoredBytes: UInt64 = 0
    /// Data blocks stored compressed.
    var compressedBlocks: UInt64 = 0
    /// Blob files the table's references point into, with the record bytes they cover (disk
    /// bytes, as blob accounting counts them). Why: garbage collection of a blob file rewrites
    /// exactly the tables that refer to it. nil for tables written before this property: they
    /// may refer to any blob file.
    var blobFiles: [UInt64: UInt64]?

    /// Every (name, value) in the sorted order the properties block needs.
    var namedValues: [(String, UInt64)] {
        var out: [(String, UInt64)] = [
            ("data.blocks", dataBlocks), ("data.compressed.blocks", compressedBlocks), ("data.raw.bytes", dataRawBytes),
            ("data.stored.bytes", dataStoredBytes), ("deletions", deletions), ("entries", entries),
            ("filter.prefixes", filterPrefixes), ("older.versions", olderVersions), ("raw.key.bytes", rawKeyBytes),
            ("raw.value.bytes", rawValueBytes), ("seq.largest", largestSequence), ("seq.smallest", smallestSequence),
        ]
        if let blobFiles {
            out.append(("blob.files", UInt64(blobFiles.count)))
            for (n, bytes) in blobFiles { out.append(("blob.\(n)", bytes)) }
        }
        return out.sorted { compareBytes(Array($0.0.utf8), Array($1.0.utf8)) < 0 }
    }

    /// Notes a reference to `bytes` of blob file `number` (a table being built).
    mutating func addBlobReference(file number: UInt64, bytes: UInt64) {
        blobFiles![number, default: 0] += bytes
    }

    mutating func set(_ name: String, _ v: UInt64) {
        if name.hasPrefix("blob.") {
            if blobFiles == nil { blobFiles = [:] }
            if let n = UInt64(name.dropFirst(5)) { blobFiles![n] = v }
            return
        }
        switch name {
        case "data.blocks": dataBlocks = v
        case "data.compressed.blocks": compressedBlocks = v
        case "data.raw.bytes": dataRawBytes = v
        case "data.stored.bytes": dataStoredBytes = v
        case "deletions": deletions = v
        case "entries": entries = v
        case "filter.prefixes": filterPrefixes = v
        case "older.versions": olderVersions = v
        case "raw.key.bytes": rawKeyBytes = v
        case "raw.value.bytes": rawValueBytes = v
        case "seq.largest": largestSequence = v
        case "seq.smallest": smallestSequence = v
        default: break  // unknown names from newer writers are ignored
        }
    }
}
