/// A change to the set of live files, one MANIFEST record each.
///
/// ```
/// edit   := field*
/// field  := 1 logNumber:varint            WAL files below this are obsolete
///         | 2 nextFileNumber:varint
///         | 3 lastSequence:varint
///         | 4 level:varint number:varint                       deleted file
///         | 5 level:varint number:varint size:varint
///             smallest:lengthPrefixed largest:lengthPrefixed   new file
///         | 6 level:varint key:lengthPrefixed                  compaction pointer
///         | 7 number:varint sealed:varint linked:varint garbage:varint copied:varint
///                                          whole state of a blob file (snapshots; sealed = record bytes + 1, 0 = open)
///         | 8 number:varint linked:varint garbage:varint copied:varint
///                                          blob bytes newly linked / turned to garbage / copied
///         | 9 number:varint recordBytes:varint                 blob file sealed (no more appends)
///         | 10 number:varint                                   blob file deleted (all garbage)
///         | 11 number:varint length:varint                     WAL closed cleanly at this synced length
/// ```
/// Blob byte counts are record bytes (file size minus the 16-byte header); see `BlobFileAccount`.
/// Tags are varints: on disk, do not change their numbers.
struct VersionEdit {
    struct NewFile {
        var level: Int
        var number: UInt64
        var size: UInt64
        var smallest: [UInt8]
        var largest: [UInt8]
    }

    var logNumber: UInt64?
    var nextFileNumber: UInt64?
    var lastSequence: UInt64?
    var deletedFiles: [(level: Int, number: UInt64)] = []
    var newFiles: [NewFile] = []
    var compactPointers: [(level: Int, key: [UInt8])] = []
    var blobStates: [(UInt64, BlobFileAccount)] = []
    var blobDeltas: [UInt64: BlobDelta] = [:]
    var blobSeals: [(UInt64, UInt64)] = []
    var blobDeletes: [UInt64] = []
    /// A WAL and its synced length at a clean close: recovery refuses a shorter file.
    var closedLog: (number: UInt64, length: UInt64)?

    func encode() -> [UInt8] {
        var out: [UInt8] = []
        if let logNumber {
            out.appendVarint(1)
            out.appendVarint(logNumber)
        }
        if let nextFileNumber {
            out.appendVarint(2)
            out.appendVarint(nextFileNumber)
        }
        if let lastSequence {
            out.appendVarint(3)
            out.appendVarint(lastSequence)
        }
        for d in deletedFiles {
            out.appendVarint(4)
            out.appendVarint(d.level)
            out.appendVarint(d.number)
        }
        for f in newFiles {
            out.appendVarint(5)
            out.appendVarint(f.level)
            out.appendVarint(f.number)
            out.appendVarint(f.size)
            out.appendLengthPrefixed(f.smallest)
            out.appendLengthPrefixed(f.largest)
        }
        for c in compactPointers {
            out.appendVarint(6)
            out.appendVarint(c.level)
            out.appendLengthPrefixed(c.key)
        }
        for (n, a) in blobStates {
            out.appendVarint(7)
            out.appendVarint(n)
            out.appendVarint(a.sealedBytes.map { $0 + 1 } ?? 0)
            out.appendVarint(a.linkedBytes)
            out.appendVarint(a.garbageBytes)
            out.appendVarint(a.copiedBytes)
        }
        for (n, d) in blobDeltas.sorted(by: { $0.key < $1.key }) {
            out.appendVarint(8)
            out.appendVarint(n)
            out.appendVarint(d.linked)
            out.appendVarint(d.garbage)
            out.appendVarint(d.copied)
        }
        for (n, b) in blobSeals {
            out.appendVarint(9)
            out.appendVarint(n)
            out.appendVarint(b)
        }
        for n in blobDeletes {
            out.appendVarint(10)
            out.appendVarint(n)
        }
        if let closedLog {
            out.appendVarint(11)
            out.appendVarint(closedLog.number)
            out.appendVarint(closedLog.length)
        }
        return out
    }

    static func decode(_ bytes: [UInt8], path: String) throws -> VersionEdit {
        var r = ByteReader(bytes)
        var edit = VersionEdit()
        func bad(_ what: String) -> SliceError { .corruption("bad version edit: \(what)", path: path) }
        while !r.isAtEnd {
            guard let tag = r.varint() else { throw bad("tag") }
            switch tag {
            case 1:
                guard let v = r.varint() else { throw bad("log number") }
                edit.logNumber = v
            case 2:
                guard let v = r.varint() else { throw bad("next file") }
                edit.nextFileNumber = v
            case 3:
                guard let v = r.varint() else { throw bad("last sequence") }
                edit.lastSequence = v
            case 4:
                guard let l = r.varint(), l < 64, let n = r.varint() else { throw bad("deleted file") }
                edit.deletedFiles.append((Int(l), n))
            case 5:
                guard let l = r.varint(), l < 64, let n = r.varint(), let s = r.varint(), let a = r.lengthPrefixed(),
                    let b = r.lengthPrefixed(), a.count >= 8, b.count >= 8
                else { throw bad("new file") }
                edit.newFiles.append(NewFile(level: Int(l), number: n, size: s, smallest: a, largest: b))
            case 6:
                guard let l = r.varint(), l < 64, let k = r.lengthPrefixed() else { throw bad("compact pointer") }
                edit.compactPointers.append((Int(l), k))
            case 7:
                guard let n = r.varint(), let s = r.varint(), let l = r.varint(), let g = r.varint(),
                    let c = r.varint()
                else { throw bad("blob file state") }
                let account = BlobFileAccount(
                    sealedBytes: s == 0 ? nil : s - 1, linkedBytes: l, garbageBytes: g, copiedBytes: c)
                edit.blobStates.append((n, account))
            case 8:
                guard let n = r.varint(), let l = r.varint(), let g = r.varint(), let c = r.varint() else {
                    throw bad("blob delta")
                }
                edit.blobDeltas.merge([n: BlobDelta(linked: l, garbage: g, copied: c)])
            case 9:
                guard let n = r.varint(), let b = r.varint() else { throw bad("blob seal") }
                edit.blobSeals.append((n, b))
            case 10:
                guard let n = r.varint() else { throw bad("blob delete") }
                edit.blobDeletes.append(n)
            case 11:
                guard let n = r.varint(), let l = r.varint() else { throw bad("closed log") }
                edit.closedLog = (n, l)
            default:
                throw bad("unknown tag \(tag)")
            }
        }
        return edit
    }
}
