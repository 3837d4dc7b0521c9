/// An immutable snapshot of which table files make up each level.
///
/// Invariants: L0 files may overlap and are ordered newest first (by file number, since flushes
/// happen in order); L1 and deeper hold non-overlapping files ordered by key. For any user key,
/// a version in a shallower level (or a newer L0 file) is newer than one deeper down.
final class Version: Sendable {
    let levels: [[FileMetaData]]
    /// Live blob files: their accounting, and the objects that keep them on disk while this
    /// version is in use.
    let blobs: [UInt64: BlobFileAccount]
    let blobFiles: [UInt64: BlobFile]

    init(levels: [[FileMetaData]], blobs: [UInt64: BlobFileAccount] = [:], blobFiles: [UInt64: BlobFile] = [:]) {
        self.levels = levels
        self.blobs = blobs
        self.blobFiles = blobFiles
    }

    static func empty(numLevels: Int) -> Version { Version(levels: Array(repeating: [], count: numLevels)) }

    /// Blob record bytes still referenced, and garbage, over all live blob files.
    var blobLiveAndGarbageBytes: (live: UInt64, garbage: UInt64) {
        var live: UInt64 = 0
        var garbage: UInt64 = 0
        for a in blobs.values {
            let total = max(a.sealedBytes ?? a.linkedBytes, a.linkedBytes)
            // Dropped copies count as garbage without freeing a record: discount them.
            let dead = min(total, a.garbageBytes > a.copiedBytes ? a.garbageBytes - a.copiedBytes : 0)
            garbage += dead
            live += total - dead
        }
        return (live, garbage)
    }

    /// Sealed blob files at least half garbage: compactions move their live values elsewhere,
    /// so the file can be freed. (Half: the copying costs at most as much as the space it frees.)
    /// Live record bytes are at most the live reference bytes (records plus copies, less the
    /// dropped references), so a file qualifies when those are at most half its records: a
    /// renamed value (a copy made, the original dropped) is still live and does not count as
    /// garbage, or renaming every file in a blob file would have it rewritten at once.
    var blobGarbageCollectionCandidates: Set<UInt64> {
        var out = Set<UInt64>()
        for (n, a) in blobs {
            guard let sealed = a.sealedBytes else { continue }
            let references = sealed + a.copiedBytes
            let live = references - min(a.garbageBytes, references)
            if live * 2 <= sealed { out.insert(n) }
        }
        return out
    }

    func bytes(level: Int) -> UInt64 { levels[level].reduce(0) { $0 + $1.size } }

    var fileCount: Int { levels.reduce(0) { $0 + $1.count } }

    /// Applies an edit, giving the next version. A file the edit moves to another level (a
    /// trivial move) keeps its `FileMetaData`, so there is one object per file: the file is
    /// deleted only when no version at all refers to it.
    func applying(_ edit: VersionEdit, deleter: FileDeleter, blobFile: (UInt64) -> BlobFile) -> Version {
        var levels = self.levels
        var existing: [UInt64: FileMetaData] = [:]
        for d in edit.deletedFiles where d.level < levels.count {
            levels[d.level].removeAll { f in
                guard f.number == d.number else { return false }
                existing[f.number] = f
                return true
            }
        }
        for f in edit.newFiles where f.level < levels.count {
            levels[f.level].append(
                existing[f.number]
                    ?? FileMetaData(
                        number: f.number, size: f.size, smallest: f.smallest, largest: f.largest, deleter: deleter))
        }
        levels[0].sort { $0.number > $1.number }
        for l in 1..<levels.count {
            levels[l].sort { compareInternalKeys($0.smallest, $1.smallest) < 0 }
        }
        var blobs = self.blobs
        BlobFileAccount.apply(edit, to: &blobs)
        var blobFiles: [UInt64: BlobFile] = [:]
        for n in blobs.keys { blobFiles[n] = self.blobFiles[n] ?? blobFile(n) }
        return Version(levels: levels, blobs: blobs, blobFiles: blobFiles)
    }

    /// Moves files over from `old` so they keep their identity (and obsolete flags work).
    func reusingFiles(of old: Version) -> Version {
        var byNumber: [UInt64: FileMetaData] = [:]
        for level in old.levels { for f in level { byNumber[f.number] = f } }
        return Version(
            levels: levels.map { $0.map { byNumber[$0.number] ?? $0 } }, blobs: blobs,
            blobFiles: blobFiles.mapValues { old.blobFiles[$0.number] ?? $0 })
    }

    /// Files in `level` whose user-key range intersects `[smallest, largest]` (nil = unbounded).
    func overlapping(level: Int, _ smallest: ArraySlice<UInt8>?, _ largest: ArraySlice<UInt8>?) -> [FileMetaData] {
        levels[level].filter { f in
            if let smallest, compareSlices(f.largestUserKey, smallest) < 0 { return false }
            if let largest, compareSlices(f.smallestUserKey, largest) > 0 { return false }
            return true
        }
    }

    /// Index of the first file in a sorted level whose largest user key is >= `userKey`.
    func findFile(level: Int, _ userKey: UnsafeRawBufferPointer) -> Int {
        let files = levels[level]
        var lo = 0
        var hi = files.count
        while lo < hi {
            let mid = (lo + hi) / 2
            let c = files[mid].largest.withUnsafeBytes {
                compareBytes(UnsafeRawBufferPointer(rebasing: $0[0..<($0.count - 8)]), userKey)
            }
            if c < 0 { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// Looks a key up level by level. `lookupKey` is the internal key (user key, snapshot).
    ///
    /// The tables that may hold the key (every L0 file whose range covers it, newest first,
    /// then one file per deeper level) are found first and their filter lines prefetched
    /// together, so the filters' cache misses overlap instead of coming one table at a time.
    /// `hash` is `BloomFilter.hash` of the user key (the caller has it from the memtables).
    /// `cacheOnly`: no table is opened and no block read that is not cached (`NeedsIO`).
    func get(_ lookupKey: UnsafeRawBufferPointer, hash: UInt64, tableCache: TableCache, cacheOnly: Bool = false)
        throws -> Memtable.Lookup
    {
        let userKey = UnsafeRawBufferPointer(rebasing: lookupKey[0..<(lookupKey.count - 8)])
        let capacity = levels[0].count + levels.count
        return try withUnsafeTemporaryAllocation(of: TableReader.self, capacity: capacity) { tables in
            var n = 0
            defer { tables.baseAddress!.deinitialize(count: n) }
            // A table that fails to open ends the list; its error is thrown only if no newer
            // table answers (as when tables were opened one at a time).
            var openError: Error?
            func add(_ f: FileMetaData) -> Bool {
                do {
                    let table: TableReader
                    if cacheOnly {
                        guard let open = tableCache.openTable(f.number) else { throw NeedsIO() }
                        table = open
                    } else {
                        table = try tableCache.table(f.number)
                    }
                    (tables.baseAddress! + n).initialize(to: table)
                    n += 1
                    return true
                } catch {
                    openError = error
                    return false
                }
            }
            collect: do {
                for f in levels[0]
                where compareSlice(f.smallestUserKey, userKey) <= 0 && compareSlice(f.largestUserKey, userKey) >= 0 {
                    guard add(f) else { break collect }
                }
                for level in 1..<levels.count where !levels[level].isEmpty {
                    let i = findFile(level: level, userKey)
                    guard i < levels[level].count else { continue }
                    let f = levels[level][i]
                    guard compareSlice(f.smallestUserKey, userKey) <= 0 else { continue }
                    guard add(f) else { break collect }
                }
            }
            for i in 0..<n { tables[i].prefetchFilter(userKeyHash: hash) }
            for i in 0..<n {
                let r = try tables[i].lookup(lookupKey, userKeyHash: hash, cacheOnly: cacheOnly)
                if case .absent = r { continue }
                return r
            }
            if let openError { throw openError }
            return .absent
        }
    }
}

@inline(__always)
func compareSlice(_ a: ArraySlice<UInt8>, _ b: UnsafeRawBufferPointer) -> Int {
    a.withUnsafeBytes { compareBytes($0, b) }
}

@inline(__always)
func compareSlices(_ a: ArraySlice<UInt8>, _ b: ArraySlice<UInt8>) -> Int {
    a.withUnsafeBytes { pa in b.withUnsafeBytes { pb in compareBytes(pa, pb) } }
}
