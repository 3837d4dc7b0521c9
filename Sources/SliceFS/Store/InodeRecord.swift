#if canImport(Glibc)
    import Glibc
#endif

/// The attributes of one inode, stored in `FSKeyspace.inodes` under its number.
///
/// Encoding (on disk: do not change; bump `version` to extend):
/// ```
/// record := version:uint8 (=1) kind:uint8 mode:fixed32 (07777) uid:fixed32 gid:fixed32
///           nlink:fixed32 rdev:fixed64 blocks:fixed64 (512-byte units holding data)
///           atime mtime ctime, each seconds:fixed64 nanoseconds:fixed32
///           target:varint-length-prefixed bytes (symlinks; empty otherwise)
///           xattrCount:varint (name:length-prefixed value:length-prefixed)*     (all little-endian)
/// kind   := 1 file | 2 directory | 3 symlink | 4 FIFO | 5 socket | 6 character device | 7 block device
/// ```
/// A regular file's size is its chunked value's length (`FSKeyspace.chunks`), written in the
/// same batch; `nlink` of a directory is not stored (2 + its subdirectories, counted).
struct InodeRecord: Equatable, Sendable {
    enum Kind: UInt8, Sendable {
        case file = 1
        case directory = 2
        case symlink = 3
        case fifo = 4
        case socket = 5
        case characterDevice = 6
        case blockDevice = 7

        var typeBits: mode_t {
            switch self {
            case .file: S_IFREG
            case .directory: S_IFDIR
            case .symlink: S_IFLNK
            case .fifo: S_IFIFO
            case .socket: S_IFSOCK
            case .characterDevice: S_IFCHR
            case .blockDevice: S_IFBLK
            }
        }

        init?(typeBits: mode_t) {
            switch typeBits & S_IFMT {
            case S_IFREG: self = .file
            case S_IFDIR: self = .directory
            case S_IFLNK: self = .symlink
            case S_IFIFO: self = .fifo
            case S_IFSOCK: self = .socket
            case S_IFCHR: self = .characterDevice
            case S_IFBLK: self = .blockDevice
            default: return nil
            }
        }
    }

    var kind: Kind
    var mode: UInt32
    var uid: UInt32
    var gid: UInt32
    var nlink: UInt32 = 1
    var rdev: UInt64 = 0
    var blocks: UInt64 = 0
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
        w.fixed32(nlink)
        w.fixed64(rdev)
        w.fixed64(blocks)
        for t in [atime, mtime, ctime] { w.timestamp(t) }
        w.bytes(target)
        w.xattrs(xattrs)
        return w.out
    }

    /// nil for bytes this version cannot read (callers report EIO).
    static func decode(_ b: [UInt8]) -> InodeRecord? {
        var reader = RecordReader(b)
        guard reader.byte() == 1, let k = reader.byte(), let kind = Kind(rawValue: k), let mode = reader.fixed32(),
            let uid = reader.fixed32(), let gid = reader.fixed32(), let nlink = reader.fixed32(),
            let rdev = reader.fixed64(), let blocks = reader.fixed64()
        else { return nil }
        var times: [Timestamp] = []
        for _ in 0..<3 {
            guard let s = reader.fixed64(), let ns = reader.fixed32() else { return nil }
            times.append(Timestamp(seconds: Int64(bitPattern: s), nanoseconds: ns))
        }
        guard let target = reader.bytes(), let n = reader.varint() else { return nil }
        var r = InodeRecord(kind: kind, mode: mode, uid: uid, gid: gid, time: times[0])
        r.nlink = nlink
        r.rdev = rdev
        r.blocks = blocks
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
