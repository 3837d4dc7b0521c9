/// Little-endian fixed-width integers and LEB128 varints, the encodings every on-disk format
/// here uses. Appenders write into a `[UInt8]`; decoders read from raw buffers with bounds
/// checks and return `nil` on truncated input (callers turn that into a corruption error).
extension Array where Element == UInt8 {
    @inline(__always)
    mutating func appendFixed32(_ v: UInt32) {
        Swift.withUnsafeBytes(of: v.littleEndian) { append(contentsOf: $0) }
    }

    @inline(__always)
    mutating func appendFixed64(_ v: UInt64) {
        Swift.withUnsafeBytes(of: v.littleEndian) { append(contentsOf: $0) }
    }

    @inline(__always)
    mutating func appendVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        append(UInt8(v))
    }

    @inline(__always)
    mutating func appendVarint(_ value: Int) { appendVarint(UInt64(value)) }

    /// Varint length followed by the bytes.
    @inline(__always)
    mutating func appendLengthPrefixed(_ bytes: some Collection<UInt8>) {
        appendVarint(bytes.count)
        append(contentsOf: bytes)
    }

    /// Replaces the contents with `bytes`; a plain copy when the length is unchanged (scans
    /// remember each user key they pass, and keys mostly have one length).
    @inline(__always)
    mutating func assign(_ bytes: UnsafeRawBufferPointer) {
        if count == bytes.count, let src = bytes.baseAddress {
            withUnsafeMutableBytes { $0.baseAddress!.copyMemory(from: src, byteCount: bytes.count) }
        } else {
            removeAll(keepingCapacity: true)
            append(contentsOf: bytes)
        }
    }

    @inline(__always)
    mutating func putFixed32(_ v: UInt32, at offset: Int) {
        Swift.withUnsafeBytes(of: v.littleEndian) { src in
            for i in 0..<4 { self[offset + i] = src[i] }
        }
    }
}

extension UnsafeRawBufferPointer {
    @inline(__always)
    func fixed32(at offset: Int) -> UInt32 {
        UInt32(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @inline(__always)
    func fixed64(at offset: Int) -> UInt64 {
        UInt64(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// Decodes a varint at `offset`, advancing it. `nil` when truncated or longer than 10 bytes.
    @inline(__always)
    func varint(at offset: inout Int, limit: Int? = nil) -> UInt64? {
        let end = limit ?? count
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while offset < end && shift <= 63 {
            let byte = self[offset]
            offset += 1
            result |= UInt64(byte & 0x7f) << shift
            if byte < 0x80 { return result }
            shift += 7
        }
        return nil
    }
}

/// A cursor over a byte buffer for decoding records that are not on a hot path
/// (manifest edits, properties, WAL batch headers).
struct ByteReader {
    let bytes: [UInt8]
    var offset: Int

    init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    var isAtEnd: Bool { offset >= bytes.count }

    mutating func varint() -> UInt64? {
        bytes.withUnsafeBytes { $0.varint(at: &offset) }
    }

    mutating func fixed64() -> UInt64? {
        guard offset + 8 <= bytes.count else { return nil }
        defer { offset += 8 }
        return bytes.withUnsafeBytes { $0.fixed64(at: offset) }
    }

    mutating func byte() -> UInt8? {
        guard offset < bytes.count else { return nil }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func lengthPrefixed() -> [UInt8]? {
        guard let n = varint(), n <= UInt64(bytes.count - offset) else { return nil }
        let start = offset
        offset += Int(n)
        return Array(bytes[start..<offset])
    }
}
