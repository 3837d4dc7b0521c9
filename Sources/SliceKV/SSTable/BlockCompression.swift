import CLZ4
import CZstd

/// A table block's compression algorithm: the type byte of the block's trailer on disk
/// (`TableFormat`).
///
/// A compressed block's stored bytes (what the trailer's checksum covers, with the type byte):
///
/// ```
/// stored     := rawLength:varint32  payload
/// rawLength   = bytes of the block before compression (1 ... 64 MiB)
/// payload     = LZ4 block format (type 1: LZ4_compress_default, no frame header), or
///               one zstd frame (type 2: ZSTD_compressCCtx) holding exactly rawLength bytes
/// ```
///
/// Type 0 is a block stored as it is (`BlockBuilder` layout). Tags are on disk: do not change.
/// Blob files are not compressed: their values are file contents read by byte range (a
/// compressed chunk must be decompressed whole to read any byte of it), and large files are
/// mostly compressed already (media, archives, git packs).
public enum Compression: String, Sendable, Codable, CaseIterable {
    case none
    case lz4
    case zstd

    /// The trailer's type byte.
    var tag: UInt8 {
        switch self {
        case .none: 0
        case .lz4: 1
        case .zstd: 2
        }
    }

    init?(tag: UInt8) {
        switch tag {
        case 0: self = .none
        case 1: self = .lz4
        case 2: self = .zstd
        default: return nil
        }
    }
}

/// Compresses the data blocks of one table being written. Not thread-safe: one per
/// `TableBuilder` (it keeps zstd's compression context and a scratch buffer between blocks).
final class BlockCompressor {
    let compression: Compression
    private let zstdLevel: Int32
    private var context: OpaquePointer?
    private var scratch: [UInt8] = []

    init(_ compression: Compression, zstdLevel: Int) {
        self.compression = compression
        self.zstdLevel = Int32(zstdLevel)
        if compression == .zstd { context = ZSTD_createCCtx() }
    }

    deinit { if let context { ZSTD_freeCCtx(context) } }

    /// Calls `body` with the bytes to store for `raw` and their compression: compressed when
    /// that saves at least an eighth of the block (RocksDB's rule: a smaller gain is not worth
    /// decompressing on every read), otherwise `raw` itself with `.none`.
    func withStored<R>(_ raw: [UInt8], _ body: (UnsafeRawBufferPointer, Compression) throws -> R) rethrows -> R {
        guard compression != .none, raw.count > 64, raw.count <= BlockDecompressor.maxRawLength,
            let n = compress(raw), n <= raw.count - raw.count / 8
        else {
            return try raw.withUnsafeBytes { try body($0, .none) }
        }
        return try scratch.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[0..<n]), compression) }
    }

    /// Writes rawLength and the payload into `scratch`; returns the stored size, nil on failure.
    private func compress(_ raw: [UInt8]) -> Int? {
        let bound: Int
        switch compression {
        case .none: return nil
        case .lz4: bound = Int(LZ4_compressBound(Int32(raw.count)))
        case .zstd: bound = ZSTD_compressBound(raw.count)
        }
        if scratch.count < bound + 5 { scratch = [UInt8](repeating: 0, count: bound + 5) }
        return scratch.withUnsafeMutableBytes { out -> Int? in
            // rawLength as a varint, written in place (no buffer per block).
            var header = 0
            var v = UInt(raw.count)
            while v >= 0x80 {
                out[header] = UInt8(truncatingIfNeeded: v) | 0x80
                v >>= 7
                header += 1
            }
            out[header] = UInt8(v)
            header += 1
            let dst = out.baseAddress! + header
            let written: Int = raw.withUnsafeBytes { src in
                switch compression {
                case .none: return 0
                case .lz4:
                    return Int(
                        LZ4_compress_default(
                            src.baseAddress!.assumingMemoryBound(to: CChar.self),
                            dst.assumingMemoryBound(to: CChar.self), Int32(raw.count), Int32(bound)))
                case .zstd:
                    let r = ZSTD_compressCCtx(context, dst, bound, src.baseAddress!, raw.count, zstdLevel)
                    return ZSTD_isError(r) != 0 ? 0 : r
                }
            }
            return written > 0 ? header + written : nil
        }
    }
}

/// Decompresses stored blocks (thread-safe: zstd contexts come from a small shared pool).
enum BlockDecompressor {
    /// Largest block accepted: a rawLength above it is damage, refused before allocating.
    static let maxRawLength = 64 << 20

    /// A new buffer (the caller frees it with `deallocate()`) holding the block `stored` decodes
    /// to, or `.corruption` when it does not decode to exactly its recorded length.
    static func decompress(_ stored: UnsafeRawBufferPointer, _ compression: Compression, path: String, offset: Int64)
        throws -> UnsafeMutableRawBufferPointer
    {
        var p = 0
        guard let length = stored.varint(at: &p), length >= 1, length <= UInt64(maxRawLength) else {
            throw SliceError.corruption("bad uncompressed length in a compressed block", path: path, offset: offset)
        }
        let n = Int(length)
        let src = UnsafeRawBufferPointer(rebasing: stored[p...])
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: n, alignment: 8)
        let produced: Int
        switch compression {
        case .none:
            produced = -1
        case .lz4:
            produced = Int(
                LZ4_decompress_safe(
                    src.baseAddress!.assumingMemoryBound(to: CChar.self),
                    out.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(src.count), Int32(n)))
        case .zstd:
            let context = contexts.withLock { $0.popLast() } ?? ZSTD_createDCtx()
            let r = ZSTD_decompressDCtx(context, out.baseAddress!, n, src.baseAddress!, src.count)
            let kept = contexts.withLock {
                guard $0.count < 16 else { return false }
                $0.append(context)
                return true
            }
            if !kept { ZSTD_freeDCtx(context) }
            produced = ZSTD_isError(r) != 0 ? -1 : r
        }
        guard produced == n else {
            out.deallocate()
            throw SliceError.corruption("compressed block does not decode", path: path, offset: offset)
        }
        return out
    }

    /// zstd decompression contexts kept between reads (creating one allocates ~100 KiB).
    private static let contexts = Locked<[OpaquePointer?]>([])
}
