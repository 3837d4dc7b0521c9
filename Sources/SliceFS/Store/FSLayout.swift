import SliceKV

/// Where SliceFS keeps what is not a path's content, out of the user's keyspace.
///
/// ```
/// keyspace  key                               value
/// .user     path key ("a/b/c")                file bytes (API-written) or an indirect entry to the
///                                             file's chunked value (files written through the mount)
/// 0x13      path key                          EntryRecord: inode number and kind of a node made
///                                             through the mount
/// 0x14      inode number, fixed64 big-endian  InodeRecord: mode, owner, times, links, xattrs, target
/// 0x15      inode number ++ chunk index       ChunkedValue of a regular file (header at the bare
///           (both fixed64 big-endian)         inode number, 64 KiB chunks, holes absent)
/// 0x16      "next-ino"                        fixed64 LE: the next inode number to hand out
///           "orphan" ++ inode number          empty: unlinked while open; freed at last close or at
///                                             the next mount after a crash
/// ```
/// 0x10-0x12 held the path-keyed records of the first layout (read as a fallback, never written).
/// On disk: do not change these numbers.
public enum FSKeyspace {
    /// First layout: attributes of files, keyed by path.
    static let legacyFileAttributes = Keyspace(rawValue: 0x10)
    /// First layout: directories and symlinks, keyed by path.
    static let legacyNodes = Keyspace(rawValue: 0x11)
    static let entries = Keyspace(rawValue: 0x13)
    static let inodes = Keyspace(rawValue: 0x14)
    public static let chunks = Keyspace(rawValue: 0x15)
    static let meta = Keyspace(rawValue: 0x16)

    static let nextInodeKey = Array("next-ino".utf8)
    static let orphanPrefix = Array("orphan".utf8)

    static func inodeKey(_ ino: InodeNumber) -> [UInt8] { withUnsafeBytes(of: ino.bigEndian) { Array($0) } }

    static func orphanKey(_ ino: InodeNumber) -> [UInt8] { orphanPrefix + inodeKey(ino) }

    /// The prefix of a file's chunked value in `chunks`.
    static func chunkPrefix(_ ino: InodeNumber) -> [UInt8] { inodeKey(ino) }

    static func decodeInode(_ b: some Collection<UInt8>) -> InodeNumber? {
        guard b.count == 8 else { return nil }
        return b.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }
}

/// Inode numbers: who hands them out and which range means what.
///
/// ```
/// 1                     the root
/// 2 ..< 2^62            handed out by the mount (counter in FSKeyspace.meta), never reused
/// 2^62 ..< 2^62 + 16    control files at the root (`.stats`, ...)
/// 2^63 ..< 2^64         nodes without an EntryRecord (written through the API, or directories
///                       implied by keys below them): 2^63 | FNV-1a 64 of kind and key, so the
///                       same key has the same number at every mount; a node made a record of
///                       later keeps its number
/// ```
enum InodeNumbers {
    static let root: InodeNumber = 1
    static let firstAllocated: InodeNumber = 2
    static let controlBase: InodeNumber = 1 << 62
    static let derivedBit: InodeNumber = 1 << 63

    /// The number of a node known only by its key. `directory`: an implicit directory (a key
    /// can be a file and a directory at once, and the two need different numbers).
    static func derived(_ key: [UInt8], directory: Bool) -> InodeNumber {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        h = (h ^ (directory ? 0x64 : 0x66)) &* 0x100_0000_01b3
        for b in key { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return derivedBit | (h & (derivedBit - 1))
    }

    static func isControl(_ ino: InodeNumber) -> Bool { ino >= controlBase && ino < controlBase + 16 }
}
