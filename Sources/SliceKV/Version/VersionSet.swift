import Synchronization

/// The persistent record of live files: MANIFEST edits plus the CURRENT pointer.
///
/// Locking: the persisted state (`current`, `logNumber`, `lastSequence`, `compactPointers`) is
/// written only by `install`, with both the engine's manifest lock and its engine lock held, so
/// holding either one is enough to read it. The manifest writer is used only under the manifest
/// lock, which serialises every edit, so the version an edit is computed against is still
/// current when it is installed. File numbers come from an atomic counter.
///
/// Crash safety: an edit is appended and synced before the version it describes is installed,
/// and CURRENT is replaced by writing a temp file, syncing it and renaming it, so at any instant
/// CURRENT names a complete MANIFEST whose edits describe files that exist.
final class VersionSet: @unchecked Sendable {
    let directory: String
    let options: Options
    let deleter: FileDeleter
    let blobStore: BlobStore

    var current: Version
    private let fileNumbers = Atomic<UInt64>(2)
    var logNumber: UInt64 = 0
    var lastSequence: SequenceNumber = 0
    var compactPointers: [[UInt8]?]
    /// Set when a MANIFEST write or sync failed: the edit may or may not be on the disk, so no
    /// later edit may be logged (nor files it named deleted) until the store is reopened.
    /// Readable under any lock (its own box: the compaction loop reads it holding the engine lock).
    var manifestFailure: SliceError? { failure.withLock { $0 } }
    private let failure = Locked<SliceError?>(nil)

    /// Synced lengths of WALs closed cleanly (from the MANIFEST; see `VersionEdit.closedLog`).
    private(set) var closedLogs: [UInt64: Int64] = [:]
    private var manifest: LogWriter?
    private var manifestNumber: UInt64 = 0

    init(directory: String, options: Options, deleter: FileDeleter, blobStore: BlobStore) {
        self.directory = directory
        self.options = options
        self.deleter = deleter
        self.blobStore = blobStore
        current = Version.empty(numLevels: options.numLevels)
        compactPointers = Array(repeating: nil, count: options.numLevels)
    }

    func newFileNumber() -> UInt64 { fileNumbers.wrappingAdd(1, ordering: .relaxed).oldValue }

    var nextFileNumber: UInt64 { fileNumbers.load(ordering: .relaxed) }

    /// Makes sure `number` is never handed out again (recovery, for files found on disk).
    func markFileNumberUsed(_ number: UInt64) {
        if number >= nextFileNumber { fileNumbers.store(number + 1, ordering: .relaxed) }
    }

    var currentManifestNumber: UInt64 { manifestNumber }

    /// Loads the state CURRENT points to. Returns false when the directory has no store yet.
    func recover() throws -> Bool {
        let currentPath = FileNames.current(directory)
        guard options.fileLayer.exists(currentPath) else { return false }
        let file = try options.fileLayer.openForReading(currentPath)
        let text = String(decoding: try file.read(count: Int(try file.size()), at: 0), as: UTF8.self)
        guard text.hasSuffix("\n"), text.hasPrefix("MANIFEST-"),
            let (kind, number) = FileNames.parse(String(text.dropLast())),
            kind == .manifest
        else {
            throw SliceError.corruption("CURRENT does not name a manifest", path: currentPath)
        }
        let path = FileNames.manifest(directory, number)
        guard options.fileLayer.exists(path) else {
            throw SliceError.corruption("CURRENT names a manifest that does not exist", path: path)
        }
        var files: [UInt64: VersionEdit.NewFile] = [:]
        var blobs: [UInt64: BlobFileAccount] = [:]
        var sawLog = false
        var sawNext = false
        var sawSeq = false
        _ = try LogReader(path: path, mode: .tolerateTruncation, layer: options.fileLayer).read { record in
            let edit = try VersionEdit.decode(record, path: path)
            if let v = edit.logNumber {
                logNumber = v
                sawLog = true
            }
            if let v = edit.nextFileNumber {
                fileNumbers.store(v, ordering: .relaxed)
                sawNext = true
            }
            if let v = edit.lastSequence {
                lastSequence = v
                sawSeq = true
            }
            for d in edit.deletedFiles { files[d.number] = nil }
            for f in edit.newFiles {
                guard f.level < options.numLevels else {
                    throw SliceError(
                        .unsupportedFormat, "file at level \(f.level) but numLevels is \(options.numLevels)", path: path
                    )
                }
                files[f.number] = f
            }
            for c in edit.compactPointers where c.level < compactPointers.count { compactPointers[c.level] = c.key }
            if let c = edit.closedLog { closedLogs[c.number] = Int64(c.length) }
            BlobFileAccount.apply(edit, to: &blobs)
        }
        guard sawLog, sawNext, sawSeq else {
            throw SliceError.corruption("manifest lacks log number, next file number or last sequence", path: path)
        }
        var edit = VersionEdit()
        edit.newFiles = Array(files.values)
        edit.blobStates = blobs.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        for n in Array(files.keys) + Array(blobs.keys) where n >= nextFileNumber {
            throw SliceError.corruption("file \(n) is not below the next file number", path: path)
        }
        current = Version.empty(numLevels: options.numLevels).applying(
            edit, deleter: deleter, blobFile: blobStore.file)
        manifestNumber = number
        return true
    }

    /// Starts a new manifest holding a snapshot of the current state, then points CURRENT at it.
    /// REQUIRES: manifest lock held (or recovery, before any other thread runs).
    func writeSnapshot(of version: Version, extra: VersionEdit? = nil) throws {
        let number = newFileNumber()
        let snapshot = snapshotEdit(of: version, extra: extra)
        let path = FileNames.manifest(directory, number)
        let writer = LogWriter(file: try options.fileLayer.create(path))
        do {
            try writer.add(snapshot.encode())
            try writer.sync()
            // The files it names (and the manifest itself) must be durable before CURRENT is.
            try options.fileLayer.syncDirectory(directory)
        } catch {
            try? options.fileLayer.remove(path)
            throw error
        }
        // Past this point CURRENT may name the new manifest even if a step fails: keep it.
        try setCurrent(number, in: directory)
        manifest = writer
        manifestNumber = number
    }

    /// Writes into `destination` a MANIFEST that describes `version` alone and a CURRENT that
    /// names it (a checkpoint; the files it names must be there already). No WAL is named: the
    /// log number is past every file of the store. REQUIRES: manifestLock (the counters stay).
    func writeManifest(of version: Version, to destination: String) throws {
        let number = newFileNumber()
        var snapshot = snapshotEdit(of: version, extra: nil)
        snapshot.logNumber = number
        let writer = LogWriter(file: try options.fileLayer.create(FileNames.manifest(destination, number)))
        try writer.add(snapshot.encode())
        try writer.sync()
        try options.fileLayer.syncDirectory(destination)
        try setCurrent(number, in: destination)
        try options.fileLayer.syncDirectory(destination)
    }

    /// An edit that rebuilds `version` from nothing: every file and blob state, the counters
    /// and the compaction pointers.
    private func snapshotEdit(of version: Version, extra: VersionEdit?) -> VersionEdit {
        var snapshot = VersionEdit()
        snapshot.logNumber = extra?.logNumber ?? logNumber
        snapshot.nextFileNumber = nextFileNumber
        snapshot.lastSequence = max(lastSequence, extra?.lastSequence ?? 0)
        var pointers = compactPointers
        for c in extra?.compactPointers ?? [] { pointers[c.level] = c.key }
        for (level, files) in version.levels.enumerated() {
            for f in files {
                snapshot.newFiles.append(
                    .init(level: level, number: f.number, size: f.size, smallest: f.smallest, largest: f.largest))
            }
        }
        snapshot.blobStates = version.blobs.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        for (level, key) in pointers.enumerated() {
            if let key { snapshot.compactPointers.append((level, key)) }
        }
        return snapshot
    }

    private func setCurrent(_ number: UInt64, in directory: String) throws {
        let temp = FileNames.temp(directory, number)
        let f = try options.fileLayer.create(temp)
        try f.append(Array("MANIFEST-\(FileNames.pad(number))\n".utf8))
        try f.sync()
        try options.fileLayer.rename(temp, to: FileNames.current(directory))
        try options.fileLayer.syncDirectory(directory)
    }

    /// Appends `edit` durably and returns the version it produces; the caller installs it with
    /// `install`. REQUIRES: manifest lock held, engine lock NOT held (this does I/O).
    func log(_ edit: VersionEdit, base: Version) throws -> Version {
        if let manifestFailure { throw manifestFailure }
        do {
            return try append(edit, base: base)
        } catch {
            let e = (error as? SliceError) ?? SliceError(.ioError, "\(error)")
            failure.withLock { $0 = e }
            throw error
        }
    }

    private func append(_ edit: VersionEdit, base: Version) throws -> Version {
        let next = base.applying(edit, deleter: deleter, blobFile: blobStore.file)
        if let manifest, manifest.size < options.manifestRollBytes {
            // The names of new tables must be durable before an edit that refers to them is
            // (LevelDB syncs the directory with the MANIFEST for the same reason).
            if !edit.newFiles.isEmpty { try options.fileLayer.syncDirectory(directory) }
            try manifest.add(edit.encode())
            try manifest.sync()
        } else {
            try writeSnapshot(of: next, extra: edit)
        }
        return next
    }

    /// Makes `next` current and marks the files `edit` dropped as obsolete.
    /// REQUIRES: engine lock held.
    func install(_ next: Version, edit: VersionEdit) {
        let added = Set(edit.newFiles.map(\.number))
        let dropped = Set(edit.deletedFiles.map(\.number)).subtracting(added)
        for level in current.levels {
            for f in level where dropped.contains(f.number) { f.obsolete.store(true, ordering: .releasing) }
        }
        for (n, f) in current.blobFiles where next.blobFiles[n] == nil { f.obsolete.store(true, ordering: .releasing) }
        for (n, f) in next.blobFiles where current.blobFiles[n] == nil { f.obsolete.store(false, ordering: .releasing) }
        current = next
        if let v = edit.logNumber { logNumber = v }
        if let v = edit.lastSequence { lastSequence = max(lastSequence, v) }
        for c in edit.compactPointers { compactPointers[c.level] = c.key }
    }
}
