/// What a path made through the mount is: its inode number and kind, stored in
/// `FSKeyspace.entries` under the path's key. Hard links are several entries with one number.
///
/// Encoding (on disk: do not change): `version:uint8 (=1) kind:uint8 (InodeRecord.Kind) ino:fixed64 LE`.
struct EntryRecord: Equatable, Sendable {
    var ino: InodeNumber
    var kind: InodeRecord.Kind

    func encode() -> [UInt8] {
        var w = RecordWriter([1, kind.rawValue])
        w.fixed64(ino)
        return w.out
    }

    static func decode(_ b: [UInt8]) -> EntryRecord? {
        var r = RecordReader(b)
        guard r.byte() == 1, let k = r.byte(), let kind = InodeRecord.Kind(rawValue: k), let ino = r.fixed64(),
            r.isAtEnd
        else { return nil }
        return EntryRecord(ino: ino, kind: kind)
    }
}
