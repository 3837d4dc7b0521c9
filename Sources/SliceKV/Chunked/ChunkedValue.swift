/// A value stored in pieces under a key prefix, so that a large or sparse value (a file of
/// SliceFS) can be changed a piece at a time. An indirect entry (`WriteBatch.putIndirect`) makes
/// it readable under another key as if it were stored there whole.
///
/// Layout in keyspace K under `prefix` (the writer puts these keys with ordinary puts; on disk:
/// do not change):
/// ```
/// header   key   := prefix
///          value := version:uint8 (= 1)  chunkShift:uint8 (12...24)  length:fixed64 little-endian
///                   (10 bytes)
/// chunk i  key   := prefix ++ i:uint64 big-endian            (i >= 0; byte order = chunk order)
///          value := bytes [i << chunkShift, (i + 1) << chunkShift) of the value
/// ```
/// A chunk may be:
/// - shorter than the chunk size: the rest of its range reads as zeros;
/// - absent (or deleted): a hole, all zeros, so a sparse value costs nothing for its holes;
/// - longer than `length` allows: bytes past `length` are ignored (a truncate need not rewrite
///   the last chunk). Bytes past the chunk size are ignored too.
/// A chunk may itself be large enough to live in a blob file; readers see it through the
/// normal read path.
public enum ChunkedValue {
    /// Chunk sizes a header may declare: 4 KiB (a page) to 16 MiB.
    public static let chunkShiftRange: ClosedRange<UInt8> = 12...24

    /// The key of the header: the prefix itself.
    public static func headerKey(_ prefix: [UInt8]) -> [UInt8] { prefix }

    /// The key of chunk `index`: big-endian, so chunks sort in index order after the header.
    public static func chunkKey(_ prefix: [UInt8], _ index: UInt64) -> [UInt8] {
        var key = prefix
        key.reserveCapacity(prefix.count + 8)
        withUnsafeBytes(of: index.bigEndian) { key.append(contentsOf: $0) }
        return key
    }

    /// The value of the header key.
    public struct Header: Sendable, Hashable {
        /// The header format this code writes and reads (on disk: do not change).
        public static let version: UInt8 = 1
        /// Encoded size in bytes.
        public static let encodedSize = 10

        /// The value's size in bytes.
        public var length: UInt64
        /// log2 of the chunk size, in `ChunkedValue.chunkShiftRange`.
        public let chunkShift: UInt8

        /// REQUIRES: `chunkShift` in `ChunkedValue.chunkShiftRange`.
        public init(length: UInt64, chunkShift: UInt8) {
            precondition(ChunkedValue.chunkShiftRange.contains(chunkShift), "chunkShift \(chunkShift) out of range")
            self.length = length
            self.chunkShift = chunkShift
        }

        /// Bytes per chunk.
        public var chunkSize: Int { 1 << Int(chunkShift) }

        /// The chunk that holds byte `offset`.
        public func chunkIndex(containing offset: UInt64) -> UInt64 { offset >> UInt64(chunkShift) }

        public func encode() -> [UInt8] {
            var out: [UInt8] = []
            out.reserveCapacity(Header.encodedSize)
            out.append(Header.version)
            out.append(chunkShift)
            out.appendFixed64(length)
            return out
        }

        /// nil when the bytes are not a header this code can read (wrong size, unknown
        /// version, chunk shift out of range).
        public init?(decoding bytes: some Collection<UInt8>) {
            let b = Array(bytes)
            guard b.count == Header.encodedSize, b[0] == Header.version,
                ChunkedValue.chunkShiftRange.contains(b[1])
            else { return nil }
            chunkShift = b[1]
            length = b.withUnsafeBytes { $0.fixed64(at: 2) }
        }
    }
}
