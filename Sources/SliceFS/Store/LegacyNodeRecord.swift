import SliceKV

/// The metadata of one file, directory or symlink in the first layout (path-keyed, keyspaces
/// 0x10-0x12): read as a fallback for stores written before inode records, never written.
///
/// Encoding (on disk: do not change; bump `version` to extend):
/// ```
/// record := version:uint8(=1) type:uint8 (1 file, 2 directory, 3 symlink)
///           mode:fixed32 (permission bits, 07777) uid:fixed32 gid:fixed32
///           atime mtime ctime, each seconds:fixed64 nanoseconds:fixed32
///           target:varint-length-prefixed (symlinks; empty otherwise)
///           xattrCount:varint (name:length-prefixed value:length-prefixed)*
/// ```
struct NodeRecord: Equatable {
    enum Kind: UInt8 {
        case file = 1
        case directory = 2
        case symlink = 3
    }

    var kind: Kind
    var mode: UInt32
    var uid: UInt32
    var gid: UInt32
    var atime: Timestamp
    var mtime: Timestamp
    var ctime: Timestamp
    var target: [UInt8] = []
    var xattrs: [[UInt8]: [UInt8]] = [:]

    init(kind: Kind, mode: UInt32, uid: UInt32, gid: UInt32, time: Timestamp = .now) {
        self.kind = kind
        self.mode = mode & 0o7777
        self.uid = uid
        self.gid = gid
        atime = time
        mtime = time
        ctime = time
    }

    func encode() -> [UInt8] {
        var out: [UInt8] = [1, kind.rawValue]
        func fixed32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func fixed64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func varint(_ v: Int) {
            var v = UInt64(v)
            while v >= 0x80 {
                out.append(UInt8(truncatingIfNeeded: v) | 0x80)
                v >>= 7
            }
            out.append(UInt8(v))
        }
        func bytes(_ b: [UInt8]) {
            varint(b.count)
            out.append(contentsOf: b)
        }
        fixed32(mode)
        fixed32(uid)
        fixed32(gid)
        for t in [atime, mtime, ctime] {
            fixed64(UInt64(bitPattern: t.seconds))
            fixed32(t.nanoseconds)
        }
        bytes(target)
        varint(xattrs.count)
        for (name, value) in xattrs.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
            bytes(name)
            bytes(value)
        }
        return out
    }

    /// nil for a record this version cannot read (reported as EIO by callers).
    static func decode(_ b: [UInt8]) -> NodeRecord? {
        var p = 0
        func byte() -> UInt8? {
            guard p < b.count else { return nil }
            defer { p += 1 }
            return b[p]
        }
        func fixed32() -> UInt32? {
            guard p + 4 <= b.count else { return nil }
            defer { p += 4 }
            return (0..<4).reduce(UInt32(0)) { $0 | UInt32(b[p + $1]) << (8 * $1) }
        }
        func fixed64() -> UInt64? {
            guard p + 8 <= b.count else { return nil }
            defer { p += 8 }
            return (0..<8).reduce(UInt64(0)) { $0 | UInt64(b[p + $1]) << (8 * UInt64($1)) }
        }
        func varint() -> Int? {
            var result: UInt64 = 0
            var shift: UInt64 = 0
            while let c = byte(), shift < 64 {
                result |= UInt64(c & 0x7f) << shift
                if c < 0x80 { return Int(exactly: result) }
                shift += 7
            }
            return nil
        }
        func bytes() -> [UInt8]? {
            guard let n = varint(), n <= b.count - p else { return nil }
            defer { p += n }
            return Array(b[p..<(p + n)])
        }
        guard byte() == 1, let k = byte(), let kind = Kind(rawValue: k), let mode = fixed32(), let uid = fixed32(),
            let gid = fixed32()
        else { return nil }
        var times: [Timestamp] = []
        for _ in 0..<3 {
            guard let s = fixed64(), let ns = fixed32() else { return nil }
            times.append(Timestamp(seconds: Int64(bitPattern: s), nanoseconds: ns))
        }
        guard let target = bytes(), let n = varint() else { return nil }
        var r = NodeRecord(kind: kind, mode: mode, uid: uid, gid: gid, time: times[0])
        r.mtime = times[1]
        r.ctime = times[2]
        r.target = target
        for _ in 0..<n {
            guard let name = bytes(), let value = bytes() else { return nil }
            r.xattrs[name] = value
        }
        return r
    }
}

#if canImport(Glibc)
    import Glibc
#endif
