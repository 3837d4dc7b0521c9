/// Writes the little-endian fields of a record (`InodeRecord`, `EntryRecord`, the first
/// layout's `NodeRecord`); `RecordReader` reads them back.
struct RecordWriter {
    private(set) var out: [UInt8]

    init(_ prefix: [UInt8]) { out = prefix }

    mutating func fixed32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }

    mutating func fixed64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }

    mutating func varint(_ v: Int) {
        var v = UInt64(v)
        while v >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    mutating func bytes(_ b: [UInt8]) {
        varint(b.count)
        out.append(contentsOf: b)
    }

    mutating func timestamp(_ t: Timestamp) {
        fixed64(UInt64(bitPattern: t.seconds))
        fixed32(t.nanoseconds)
    }

    /// Count, then name/value pairs in name order (so equal records encode equally).
    mutating func xattrs(_ x: [[UInt8]: [UInt8]]) {
        varint(x.count)
        for (name, value) in x.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
            bytes(name)
            bytes(value)
        }
    }
}

/// Reads the little-endian fields of a record, failing (nil) past its end.
struct RecordReader {
    private let b: [UInt8]
    private var p = 0

    init(_ b: [UInt8]) { self.b = b }

    var isAtEnd: Bool { p == b.count }

    mutating func byte() -> UInt8? {
        guard p < b.count else { return nil }
        defer { p += 1 }
        return b[p]
    }

    mutating func fixed32() -> UInt32? {
        guard p + 4 <= b.count else { return nil }
        defer { p += 4 }
        return (0..<4).reduce(UInt32(0)) { $0 | UInt32(b[p + $1]) << (8 * $1) }
    }

    mutating func fixed64() -> UInt64? {
        guard p + 8 <= b.count else { return nil }
        defer { p += 8 }
        return (0..<8).reduce(UInt64(0)) { $0 | UInt64(b[p + $1]) << (8 * UInt64($1)) }
    }

    mutating func varint() -> Int? {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while let c = byte(), shift < 64 {
            result |= UInt64(c & 0x7f) << shift
            if c < 0x80 { return Int(exactly: result) }
            shift += 7
        }
        return nil
    }

    mutating func bytes() -> [UInt8]? {
        guard let n = varint(), n <= b.count - p else { return nil }
        defer { p += n }
        return Array(b[p..<(p + n)])
    }
}
