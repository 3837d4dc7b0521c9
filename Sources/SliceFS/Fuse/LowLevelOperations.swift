import SliceKV

#if canImport(Glibc)
    import Glibc
#endif

/// An inode number as the kernel sees it. 1 is the root (`FUSE_ROOT_ID`).
public typealias InodeNumber = UInt64

/// A failure with the errno the kernel passes on to the caller (positive: `ENOENT`, not
/// `-ENOENT`). Every operation of `LowLevelOperations` throws this, a `SliceError` (mapped by
/// `FSError.init(_:)`), or nothing.
public struct FSError: Error, Equatable, CustomStringConvertible {
    public let errno: Int32

    public init(_ errno: Int32) { self.errno = errno }

    public var description: String { "errno \(errno) (\(String(cString: strerror(errno))))" }
}

/// Who sent a request (from `fuse_req_ctx`).
public struct Caller: Sendable {
    public var uid: uid_t
    public var gid: gid_t
    public var pid: pid_t
    /// The caller's umask, already applied by the kernel to create modes when the connection
    /// has `FUSE_CAP_DONT_MASK` off (the default); kept for completeness.
    public var umask: mode_t

    public init(uid: uid_t, gid: gid_t, pid: pid_t = 0, umask: mode_t = 0) {
        self.uid = uid
        self.gid = gid
        self.pid = pid
        self.umask = umask
    }

    public var isRoot: Bool { uid == 0 }
}

/// A point in time, seconds and nanoseconds since the epoch.
public struct Timestamp: Equatable, Hashable, Sendable, Comparable {
    public var seconds: Int64
    public var nanoseconds: UInt32

    public init(seconds: Int64, nanoseconds: UInt32) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    public static var now: Timestamp {
        var ts = Glibc.timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Timestamp(seconds: Int64(ts.tv_sec), nanoseconds: UInt32(ts.tv_nsec))
    }

    public init(_ ts: Glibc.timespec) { self.init(seconds: Int64(ts.tv_sec), nanoseconds: UInt32(ts.tv_nsec)) }

    public var timespec: Glibc.timespec { Glibc.timespec(tv_sec: Int(seconds), tv_nsec: Int(nanoseconds)) }

    public static func < (a: Timestamp, b: Timestamp) -> Bool {
        (a.seconds, a.nanoseconds) < (b.seconds, b.nanoseconds)
    }
}

/// The attributes of an inode, as `struct stat` carries them.
public struct Attributes: Equatable, Sendable {
    public var ino: InodeNumber
    /// Type bits (`S_IFREG`, `S_IFDIR`, ...) and permission bits.
    public var mode: mode_t
    public var nlink: UInt64
    public var uid: uid_t
    public var gid: gid_t
    /// Device number of a character or block device node.
    public var rdev: UInt64 = 0
    public var size: UInt64
    /// 512-byte blocks allocated (holes do not count).
    public var blocks: UInt64
    public var atime: Timestamp
    public var mtime: Timestamp
    public var ctime: Timestamp

    public init(
        ino: InodeNumber, mode: mode_t, nlink: UInt64, uid: uid_t, gid: gid_t, rdev: UInt64 = 0, size: UInt64,
        blocks: UInt64, atime: Timestamp, mtime: Timestamp, ctime: Timestamp
    ) {
        self.ino = ino
        self.mode = mode
        self.nlink = nlink
        self.uid = uid
        self.gid = gid
        self.rdev = rdev
        self.size = size
        self.blocks = blocks
        self.atime = atime
        self.mtime = mtime
        self.ctime = ctime
    }

    /// Fills a `struct stat`.
    public func fill(_ st: UnsafeMutablePointer<stat>) {
        memset(st, 0, MemoryLayout<stat>.size)
        st.pointee.st_ino = ino_t(ino)
        st.pointee.st_mode = mode
        st.pointee.st_nlink = nlink_t(nlink)
        st.pointee.st_uid = uid
        st.pointee.st_gid = gid
        st.pointee.st_rdev = dev_t(rdev)
        st.pointee.st_size = off_t(clamping: size)
        st.pointee.st_blocks = blkcnt_t(clamping: blocks)
        st.pointee.st_blksize = 4096
        st.pointee.st_atim = atime.timespec
        st.pointee.st_mtim = mtime.timespec
        st.pointee.st_ctim = ctime.timespec
    }
}

/// The answer to a request that names an inode to the kernel (lookup, create, mknod, mkdir,
/// symlink, link, readdirplus). Each such answer adds one to the inode's lookup count, which
/// the kernel gives back with `forget`. `ino == 0` is a negative entry: "no such name",
/// cached for `entryTimeout` (lookup only).
public struct EntryReply: Sendable {
    public var ino: InodeNumber
    public var generation: UInt64 = 0
    public var attributes: Attributes?
    public var attrTimeout: Double
    public var entryTimeout: Double

    public init(
        ino: InodeNumber, generation: UInt64 = 0, attributes: Attributes?, attrTimeout: Double, entryTimeout: Double
    ) {
        self.ino = ino
        self.generation = generation
        self.attributes = attributes
        self.attrTimeout = attrTimeout
        self.entryTimeout = entryTimeout
    }

    public static func negative(timeout: Double) -> EntryReply {
        EntryReply(ino: 0, attributes: nil, attrTimeout: 0, entryTimeout: timeout)
    }
}

/// How an open (or opendir/create) is answered: the handle and the `fuse_file_info` flags.
public struct OpenReply: Sendable {
    public var fh: UInt64
    /// FOPEN_DIRECT_IO: bypass the page cache (control files, whose size is not known).
    public var directIO = false
    /// FOPEN_KEEP_CACHE: the cached pages are still valid (the file did not change since).
    public var keepCache = false
    public var nonSeekable = false
    /// FOPEN_CACHE_DIR (opendir): the kernel may cache the listing.
    public var cacheDirectory = false
    /// FOPEN_NOFLUSH: `close` sends no FLUSH; the handle's writes are committed at RELEASE
    /// (after `close` returned), so a full disk must be reported by `write`.
    public var noFlush = false

    public init(fh: UInt64, directIO: Bool = false, keepCache: Bool = false, nonSeekable: Bool = false) {
        self.fh = fh
        self.directIO = directIO
        self.keepCache = keepCache
        self.nonSeekable = nonSeekable
    }
}

/// A time in a SETATTR request.
public enum TimeChange: Equatable, Sendable {
    case now
    case set(Timestamp)
}

/// What a SETATTR request changes (nil: unchanged). `size` is a truncate.
public struct AttributeChanges: Equatable, Sendable {
    public var mode: mode_t?
    public var uid: uid_t?
    public var gid: gid_t?
    public var size: UInt64?
    public var atime: TimeChange?
    public var mtime: TimeChange?
    /// Set by the kernel's `file_remove_privs` path (FATTR_KILL_SUIDGID): clear set-user-ID
    /// and set-group-ID as a write by an unprivileged caller would.
    public var killSetID = false

    public init() {}
}

/// One directory entry handed to the bridge by `readdir`.
public struct DirectoryEntry {
    public var name: [UInt8]
    public var ino: InodeNumber
    /// Type bits only (`S_IFDIR`, `S_IFREG`, ...).
    public var type: mode_t
    /// The offset the next `readdir` of this handle starts from to continue after this entry.
    public var nextOffset: Int64
    /// For `readdirplus`: the entry with attributes (nil for `.` and `..`, which never count
    /// as lookups).
    public var entry: EntryReply?

    public init(name: [UInt8], ino: InodeNumber, type: mode_t, nextOffset: Int64, entry: EntryReply? = nil) {
        self.name = name
        self.ino = ino
        self.type = type
        self.nextOffset = nextOffset
        self.entry = entry
    }
}

/// Everything the low-level FUSE bridge (`FuseLowLevelBridge`) asks of a filesystem, in
/// inode numbers and bytes, with no C types but `stat`/`statvfs` fills. The bridge alone
/// touches libfuse: it decodes each request, calls one method here on the FUSE worker thread
/// that received it (many at once: implementations are thread-safe), and encodes the answer
/// or the thrown error (`FSError`'s errno; a `SliceError` through `FSError.init(_:)`; EIO
/// for anything else).
///
/// Lookup counting: every `EntryReply` with `ino != 0` returned from `lookup`, `create`,
/// `mknod`, `mkdir`, `symlink`, `link`, and every `readdirplus` entry the bridge *accepted*
/// (the `fill` closure returned true) is one reference the kernel holds; `forget` returns
/// them. An implementation may drop an inode only when its count is zero (and it has no
/// links and no open handles).
public protocol LowLevelOperations: AnyObject, Sendable {
    /// Where the session puts itself so the filesystem can tell the kernel of changes (nil:
    /// the filesystem never does).
    var notifier: KernelNotifier? { get }
    /// Where the bridge counts the requests it receives, by kind (nil: not counted).
    var requestCounts: FuseRequestCounts? { get }
    /// Called once the session is mounted, before the first request.
    func mounted()
    /// Called once when the session ends (unmount or signal): write back what is open.
    func unmounting()

    func lookup(parent: InodeNumber, name: [UInt8], caller: Caller) throws -> EntryReply
    func forget(_ ino: InodeNumber, lookups: UInt64)
    /// `fh`: the handle when the kernel asks through an open file (`fstat`).
    func getattr(_ ino: InodeNumber, fh: UInt64?, caller: Caller) throws -> (Attributes, timeout: Double)
    func setattr(_ ino: InodeNumber, _ changes: AttributeChanges, fh: UInt64?, caller: Caller) throws -> (
        Attributes, timeout: Double
    )
    func readlink(_ ino: InodeNumber, caller: Caller) throws -> [UInt8]
    /// Any node but a directory: regular file, FIFO, socket, character or block device.
    func mknod(parent: InodeNumber, name: [UInt8], mode: mode_t, rdev: UInt64, caller: Caller) throws -> EntryReply
    func mkdir(parent: InodeNumber, name: [UInt8], mode: mode_t, caller: Caller) throws -> EntryReply
    func unlink(parent: InodeNumber, name: [UInt8], caller: Caller) throws
    func rmdir(parent: InodeNumber, name: [UInt8], caller: Caller) throws
    func symlink(target: [UInt8], parent: InodeNumber, name: [UInt8], caller: Caller) throws -> EntryReply
    /// `flags`: `RENAME_NOREPLACE`, `RENAME_EXCHANGE` or 0.
    func rename(
        parent: InodeNumber, name: [UInt8], newParent: InodeNumber, newName: [UInt8], flags: UInt32, caller: Caller
    ) throws
    func link(_ ino: InodeNumber, newParent: InodeNumber, newName: [UInt8], caller: Caller) throws -> EntryReply

    /// `flags`: the open(2) flags (`O_ACCMODE`, `O_TRUNC`, `O_APPEND`, ...).
    func open(_ ino: InodeNumber, flags: Int32, caller: Caller) throws -> OpenReply
    func create(parent: InodeNumber, name: [UInt8], mode: mode_t, flags: Int32, caller: Caller) throws -> (
        EntryReply, OpenReply
    )
    /// Reads up to `buffer.count` bytes at `offset`; returns how many (0 at the end).
    func read(_ ino: InodeNumber, fh: UInt64, offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int
    /// Returns the number of bytes written (all of them, or an error).
    func write(_ ino: InodeNumber, fh: UInt64, offset: UInt64, data: UnsafeRawBufferPointer, caller: Caller) throws
        -> Int
    /// Each `close` of a descriptor (there may be several per open).
    func flush(_ ino: InodeNumber, fh: UInt64, caller: Caller) throws
    /// The last close of an open; errors have no caller to go to.
    func release(_ ino: InodeNumber, fh: UInt64)
    func fsync(_ ino: InodeNumber, fh: UInt64, dataOnly: Bool) throws
    /// `mode` as fallocate(2): 0, `FALLOC_FL_KEEP_SIZE`, `FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE`, ...
    func fallocate(_ ino: InodeNumber, fh: UInt64, mode: Int32, offset: UInt64, length: UInt64) throws
    /// `SEEK_DATA` / `SEEK_HOLE` (others are answered by the kernel).
    func lseek(_ ino: InodeNumber, fh: UInt64, offset: UInt64, whence: Int32) throws -> UInt64

    func opendir(_ ino: InodeNumber, caller: Caller) throws -> OpenReply
    /// Hands entries from `offset` (0: the start; else a `nextOffset` handed out before) to
    /// `fill` until it returns false (the reply buffer is full: that entry was not sent, and
    /// for `plus` it must not count as a lookup) or the listing ends.
    func readdir(
        _ ino: InodeNumber, fh: UInt64, offset: Int64, plus: Bool, fill: (DirectoryEntry) -> Bool
    ) throws
    func releasedir(_ ino: InodeNumber, fh: UInt64)
    func fsyncdir(_ ino: InodeNumber, fh: UInt64, dataOnly: Bool) throws

    func statfs(_ ino: InodeNumber, _ st: UnsafeMutablePointer<statvfs>) throws
    /// `flags`: `XATTR_CREATE`, `XATTR_REPLACE` or 0.
    func setxattr(_ ino: InodeNumber, name: [UInt8], value: UnsafeRawBufferPointer, flags: Int32, caller: Caller)
        throws
    func getxattr(_ ino: InodeNumber, name: [UInt8], caller: Caller) throws -> [UInt8]
    /// The names, each followed by a NUL.
    func listxattr(_ ino: InodeNumber, caller: Caller) throws -> [UInt8]
    func removexattr(_ ino: InodeNumber, name: [UInt8], caller: Caller) throws
    /// Only sent without `default_permissions`.
    func access(_ ino: InodeNumber, mask: Int32, caller: Caller) throws
}

extension FSError {
    /// The errno a thrown error answers with: its own for `FSError`, the mapping below for a
    /// store's `SliceError`, EIO for anything else.
    public static func errno(of error: any Error) -> Int32 {
        if let e = error as? FSError { return e.errno }
        guard let e = error as? SliceError else { return EIO }
        switch e.code {
        case .noSpace: return ENOSPC
        case .invalidArgument: return e.errno ?? EINVAL  // EFBIG: a change over an etcd cluster's limits
        case .readOnly: return EROFS
        case .corruption, .ioError, .closed, .locked, .unsupportedFormat: return EIO
        }
    }
}

extension LowLevelOperations {
    public var notifier: KernelNotifier? { nil }
    public var requestCounts: FuseRequestCounts? { nil }
}
