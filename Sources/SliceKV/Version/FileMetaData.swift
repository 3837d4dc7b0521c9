import Synchronization

/// One live SSTable as a version sees it.
///
/// Lifetime: versions hold their files strongly; when compaction removes a file from the
/// current version it is marked `obsolete`, and the file is deleted when the last version that
/// still lists it (an iterator's, a running read's) lets go: `deinit` does the unlink.
final class FileMetaData: Sendable {
    let number: UInt64
    let size: UInt64
    /// Smallest and largest internal keys in the file.
    let smallest: [UInt8]
    let largest: [UInt8]
    /// Set under the engine lock while a compaction has this file as input.
    let beingCompacted = Atomic<Bool>(false)
    let obsolete = Atomic<Bool>(false)
    private let deleter: FileDeleter

    init(number: UInt64, size: UInt64, smallest: [UInt8], largest: [UInt8], deleter: FileDeleter) {
        self.number = number
        self.size = size
        self.smallest = smallest
        self.largest = largest
        self.deleter = deleter
    }

    var smallestUserKey: ArraySlice<UInt8> { smallest.userKeyPart }
    var largestUserKey: ArraySlice<UInt8> { largest.userKeyPart }

    deinit {
        if obsolete.load(ordering: .acquiring) { deleter.delete(tableNumber: number) }
    }
}

/// Deletes table files that no version references any more, and forgets their open readers.
final class FileDeleter: Sendable {
    let directory: String
    let tableCache: TableCache
    let blobReaders: BlobReaderCache
    let counters: EngineCounters

    init(directory: String, tableCache: TableCache, blobReaders: BlobReaderCache, counters: EngineCounters) {
        self.directory = directory
        self.tableCache = tableCache
        self.blobReaders = blobReaders
        self.counters = counters
    }

    func delete(blobNumber: UInt64) {
        blobReaders.evict(blobNumber)
        let path = FileNames.blob(directory, blobNumber)
        let size = tableCache.layer.fileSize(path) ?? 0
        let removed = (try? tableCache.layer.remove(path)) != nil
        counters.blobFilesDeleted.add(1, ordering: .relaxed)
        if removed { counters.blobBytesReclaimed.add(Int(size), ordering: .relaxed) }
    }

    func delete(tableNumber: UInt64) {
        tableCache.evict(tableNumber)
        try? tableCache.layer.remove(FileNames.table(directory, tableNumber))
        counters.filesDeleted.add(1, ordering: .relaxed)
    }
}

/// Names of the files in a store directory.
///
/// ```
/// CURRENT            name of the live MANIFEST, one line (replaced atomically by rename)
/// LOCK               flock'ed while the store is open
/// MANIFEST-NNNNNN    version edits (log format)
/// NNNNNN.log         write-ahead log of one memtable (log format, WriteBatch payloads)
/// NNNNNN.sst         table (TableFormat)
/// NNNNNN.blob        large values (BlobFormat)
/// NNNNNN.tmp         a file being written; deleted on open
/// ```
enum FileNames {
    static func pad(_ n: UInt64) -> String {
        let s = String(n)
        return s.count >= 6 ? s : String(repeating: "0", count: 6 - s.count) + s
    }

    static func table(_ dir: String, _ n: UInt64) -> String { "\(dir)/\(pad(n)).sst" }
    static func log(_ dir: String, _ n: UInt64) -> String { "\(dir)/\(pad(n)).log" }
    static func manifest(_ dir: String, _ n: UInt64) -> String { "\(dir)/MANIFEST-\(pad(n))" }
    static func blob(_ dir: String, _ n: UInt64) -> String { "\(dir)/\(pad(n)).blob" }
    static func temp(_ dir: String, _ n: UInt64) -> String { "\(dir)/\(pad(n)).tmp" }
    static func current(_ dir: String) -> String { "\(dir)/CURRENT" }
    /// Appended to a WAL that recovery dropped damaged records from; such files are never
    /// deleted by the store (`parse` does not know them).
    static let damagedSuffix = ".damaged"
    static func lock(_ dir: String) -> String { "\(dir)/LOCK" }

    enum Kind { case table, log, manifest, temp, blob }

    /// Parses a directory entry name into its kind and number.
    static func parse(_ name: String) -> (Kind, UInt64)? {
        if name.hasPrefix("MANIFEST-"), let n = UInt64(name.dropFirst(9)) { return (.manifest, n) }
        let parts = name.split(separator: ".")
        guard parts.count == 2, let n = UInt64(parts[0]) else { return nil }
        switch parts[1] {
        case "sst": return (.table, n)
        case "log": return (.log, n)
        case "tmp": return (.temp, n)
        case "blob": return (.blob, n)
        default: return nil
        }
    }
}
