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
        var w = RecordWriter([1, kind.rawValue])
        w.fixed32(mode)
        w.fixed32(uid)
        w.fixed32(gid)
        for t in [atime, mtime, ctime] { w.timestamp(t) }
        w.bytes(target)
        w.xattrs(xattrs)
        return w.out
    }

    /// nil for a record this version cannot read (reported as EIO by callers).
    static func decode(_ b: [UInt8]) -> NodeRecord? {
        var reader = RecordReader(b)
        guard reader.byte() == 1, let k = reader.byte(), let kind = Kind(rawValue: k), let mode = reader.fixed32(),
            let uid = reader.fixed32(), let gid = reader.fixed32()
        else { return nil }
        var times: [Timestamp] = []
        for _ in 0..<3 {
            guard let s = reader.fixed64(), let ns = reader.fixed32() else { return nil }
            times.append(Timestamp(seconds: Int64(bitPattern: s), nanoseconds: ns))
        }
        guard let target = reader.bytes(), let n = reader.varint() else { return nil }
        var r = NodeRecord(kind: kind, mode: mode, uid: uid, gid: gid, time: times[0])
        r.mtime = times[1]
        r.ctime = times[2]
        r.target = target
        for _ in 0..<n {
            guard let name = reader.bytes(), let value = reader.bytes() else { return nil }
            r.xattrs[name] = value
        }
        return r
    }
}

#if canImport(Glibc)
    import Glibc
#endif
