/// Blob files: where values at or above `Options.blobThreshold` live, outside the LSM tree
/// (WiscKey-style key-value separation), so compaction moves small references instead of the
/// bytes.
///
/// ```
/// file    := header record*
/// header  := magic "SLICEBLB" (8 bytes)  version:fixed32 (= 1)  reserved:fixed32 (= 0)
/// record  := chunk+                          one value; its reference says where it starts
/// chunk   := data  crc:fixed32               data is 65,536 bytes except for a record's last chunk
/// crc     := mask(crc32c(data ++ fixed32(chunk index within the record)))
/// ```
/// A value's reference (`BlobReference`) carries the CRC32C of its chunks' stored `crc` fields
/// in order, so a full read checks the whole value without hashing its bytes twice.
/// All integers little-endian; on disk: do not change. Records are appended by one writer at a
/// time per file (a writer is owned by one put while it runs). The per-chunk checksum lets a
/// ranged read verify only the chunks it touches; the index inside the checksum catches a
/// chunk read from the wrong place. Garbage (values overwritten or deleted) is accounted per
/// file in the MANIFEST (`VersionEdit` tags 7-9); a file is deleted once every record in it
/// is garbage and no reader can still see it, and a sealed file at least half garbage has its
/// live values copied out by compaction (`Version.blobGarbageCollectionCandidates`).
enum BlobFormat {
    static let magic: [UInt8] = Array("SLICEBLB".utf8)
    static let version: UInt32 = 1
    static let headerSize = 16
    static let chunkSize = 64 << 10
    static let chunkTrailerSize = 4

    static var header: [UInt8] {
        var h = magic
        h.appendFixed32(version)
        h.appendFixed32(0)
        return h
    }

    @inline(__always)
    static func chunkCount(_ length: UInt64) -> UInt64 { (length + UInt64(chunkSize) - 1) / UInt64(chunkSize) }

    /// File offset of chunk `i` of a record starting at `offset`.
    @inline(__always)
    static func chunkOffset(_ offset: UInt64, _ i: UInt64) -> UInt64 {
        offset + i * UInt64(chunkSize + chunkTrailerSize)
    }

    @inline(__always)
    static func chunkChecksum(_ data: UnsafeRawBufferPointer, index: UInt32) -> UInt32 {
        CRC32C.mask(finishChunk(CRC32C.checksum(data), index: index))
    }

    /// Extends a running chunk CRC with the chunk index (the last step of a chunk checksum).
    @inline(__always)
    static func finishChunk(_ crc: UInt32, index: UInt32) -> UInt32 {
        withUnsafeBytes(of: index.littleEndian) { CRC32C.checksum($0, extending: crc) }
    }

    static func checkHeader(_ bytes: [UInt8], path: String) throws {
        guard bytes.count == headerSize, Array(bytes[0..<8]) == magic else {
            throw SliceError.corruption("not a blob file (bad magic)", path: path)
        }
        let v = bytes.withUnsafeBytes { $0.fixed32(at: 8) }
        guard v == version else {
            throw SliceError(.unsupportedFormat, "blob file format version \(v) is not supported", path: path)
        }
    }
}
