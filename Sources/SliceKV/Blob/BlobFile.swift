import Synchronization

/// One blob file's lifetime. Versions that list the file, memtables holding references into
/// it and its active writer all hold this object; when it has been dropped from the current
/// version (every record in it is garbage) it is marked `obsolete`, and `deinit` deletes the
/// file once the last holder (an old version kept by an iterator, a read in progress) lets go.
final class BlobFile: Sendable {
    let number: UInt64
    let obsolete = Atomic<Bool>(false)
    private let deleter: FileDeleter

    init(number: UInt64, deleter: FileDeleter) {
        self.number = number
        self.deleter = deleter
    }

    deinit {
        if obsolete.load(ordering: .acquiring) { deleter.delete(blobNumber: number) }
    }
}

/// What a version knows about one blob file (all byte counts are record bytes: the file's size
/// minus its header).
struct BlobFileAccount: Sendable, Equatable {
    /// Set once no more records will be appended: the file's final record bytes.
    var sealedBytes: UInt64?
    /// Bytes of records whose references have been written into tables (by flushes).
    var linkedBytes: UInt64 = 0
    /// Bytes of dropped references (by compaction) and of records no entry ever referred to
    /// (orphaned by a crash).
    var garbageBytes: UInt64 = 0
    /// Bytes of flushed references that are copies (a rename gives a record a second entry).
    /// Each reference, original or copy, adds its bytes to `garbageBytes` once when dropped,
    /// so the file is dead when garbage covers the records plus the copies.
    var copiedBytes: UInt64 = 0

    /// Every reference counted so far is gone. A copy still in a memtable is not counted yet
    /// (its source may already be dropped or relocated), so the engine deletes a dead file only
    /// when no memtable holds a copy into it, with an explicit delete in the edit
    /// (`Engine.addBlobDeletions`).
    var isDead: Bool {
        guard let sealedBytes else { return false }
        return garbageBytes >= sealedBytes + copiedBytes
    }

    /// Whether a file still open for appends, with `recordBytes` written, should be sealed now
    /// rather than when full: when nothing in it is live any more (sealing deletes it, at any
    /// size), or when it holds at least `minimumBytes` of counted garbage. Why not wait for
    /// half of it to be garbage: while values are being overwritten, the file keeps growing
    /// with new values whose references sit in memtables (live until a flush drops them), so
    /// it could stay under half garbage until full; sealed, it becomes collectable
    /// (`Version.blobGarbageCollectionCandidates`) as soon as the next flushes count the rest.
    /// Live bytes are the records plus copies less what was dropped.
    func worthSealingEarly(recordBytes: UInt64, minimumBytes: UInt64) -> Bool {
        guard recordBytes > 0, garbageBytes > 0 else { return false }
        let references = recordBytes + copiedBytes
        let live = references - min(garbageBytes, references)
        let garbage = min(garbageBytes, recordBytes)
        return live == 0 || garbage >= minimumBytes
    }

    /// Applies the blob part of an edit to a set of accounts (replay and versions share this).
    static func apply(_ edit: VersionEdit, to accounts: inout [UInt64: BlobFileAccount]) {
        for (number, account) in edit.blobStates { accounts[number] = account }
        for (number, bytes) in edit.blobSeals { accounts[number, default: .init()].sealedBytes = bytes }
        for (number, delta) in edit.blobDeltas {
            accounts[number, default: .init()].linkedBytes += delta.linked
            accounts[number, default: .init()].garbageBytes += delta.garbage
            accounts[number, default: .init()].copiedBytes += delta.copied
        }
        for number in edit.blobDeletes { accounts[number] = nil }
    }
}

/// Per-file changes a flush or compaction makes: bytes newly linked, bytes turned to garbage.
struct BlobDelta: Sendable, Equatable {
    var linked: UInt64 = 0
    var garbage: UInt64 = 0
    var copied: UInt64 = 0
}

extension Dictionary where Key == UInt64, Value == BlobDelta {
    mutating func merge(_ other: [UInt64: BlobDelta]) {
        for (k, d) in other {
            self[k, default: .init()].linked += d.linked
            self[k, default: .init()].garbage += d.garbage
            self[k, default: .init()].copied += d.copied
        }
    }
}
