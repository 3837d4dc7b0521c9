#if canImport(Glibc)
    import Glibc
#endif

/// What a disk would still hold after a power cut, kept beside the real files so that a power
/// cut can be applied to them afterwards (used by `FaultInjectingFileLayer`).
///
/// The model (LevelDB's `fault_injection_test` and Pebble's crash-clone tests, made stricter):
/// - **File contents**: bytes written since the file's last `fdatasync` are lost; bytes that
///   were synced stay. Files are append-mostly, so "synced" is a length per file; the rare write
///   below that length (in place) saves the old bytes first (`undo`), and a truncation
///   below it lowers it (pessimistically: the truncation is kept, the bytes are not).
/// - **Directory entries**: a create, rename or unlink is undone unless its directory was
///   fsynced after it. To be able to undo, an unlinked file or a rename's overwritten target
///   is kept as a hard link under `.faultlayer-saved/` in the same directory until then.
/// - Mapped writes are reported after the copy (`FileLayer.didWriteMapped`); they are appends
///   (the WAL), so they never need undo.
///
/// REQUIRES: every method is called under the owning layer's lock.
package final class PowerCutJournal {
    struct FileState {
        /// Bytes from 0 that a power cut keeps.
        var synced: Int64
        /// End of the bytes written so far (what a crash of the process alone would keep).
        var written: Int64
        /// Old contents of synced ranges overwritten since the last sync, oldest first.
        var undo: [(offset: Int64, bytes: [UInt8])] = []
    }

    enum DirectoryChange {
        case create(path: String)
        case rename(from: String, to: String, savedTarget: String?, targetState: FileState?)
        case remove(path: String, saved: String, state: FileState?)

        var directory: String {
            switch self {
            case .create(let p), .rename(_, let p, _, _), .remove(let p, _, _): return parent(of: p)
            }
        }
    }

    /// Name of the folder (inside each store directory) that holds files a power cut may bring back.
    static let savedFolder = ".faultlayer-saved"

    private(set) var files: [String: FileState] = [:]
    private(set) var pending: [DirectoryChange] = []
    private var savedCount = 0
    /// Folders made by `savePath`, removed by `removeSavedFolders`.
    private(set) var savedFolders: Set<String> = []

    // MARK: Recording

    /// A file that was not created under this journal is taken as durable as it is.
    private func state(_ path: String) -> FileState {
        if let s = files[path] { return s }
        let size = Self.size(path) ?? 0
        let s = FileState(synced: size, written: size)
        files[path] = s
        return s
    }

    func opened(_ path: String, created: Bool, truncated: Bool) {
        if created {
            files[path] = FileState(synced: 0, written: 0)
            pending.append(.create(path: path))
        } else if truncated {
            files[path] = FileState(synced: 0, written: 0)
        } else {
            _ = state(path)
        }
    }

    /// Called before `count` bytes are written at `offset` (saves what a sync protected).
    func willWrite(_ path: String, at offset: Int64, count: Int) {
        var s = state(path)
        if offset < s.synced {
            let end = min(s.synced, offset + Int64(count))
            if let old = Self.readBytes(path, at: offset, count: Int(end - offset)) { s.undo.append((offset, old)) }
        }
        files[path] = s
    }

    func wrote(_ path: String, at offset: Int64, count: Int) {
        var s = state(path)
        s.written = max(s.written, offset + Int64(count))
        files[path] = s
    }

    func truncated(_ path: String, to length: Int64) {
        var s = state(path)
        s.written = length
        s.synced = min(s.synced, length)
        files[path] = s
    }

    func synced(_ path: String) {
        var s = state(path)
        s.synced = s.written
        s.undo = []
        files[path] = s
    }

    /// Before a rename: keeps the target (if any) so that undoing the rename can restore it.
    func willRename(_ from: String, to: String) {
        _ = state(from)
        var saved: String?
        if access(to, F_OK) == 0 {
            let keep = savePath(for: to)
            if link(to, keep) == 0 { saved = keep }
        }
        pending.append(.rename(from: from, to: to, savedTarget: saved, targetState: files[to]))
        files[to] = files.removeValue(forKey: from)
    }

    /// Before an unlink: a file whose creation is not yet durable just goes; any other is kept
    /// aside (a hard link) so that undoing the unlink can bring it back.
    func willRemove(_ path: String) {
        if let i = pending.lastIndex(where: { if case .create(let p) = $0 { p == path } else { false } }),
            !pending[(i + 1)...].contains(where: { if case .rename(let f, _, _, _) = $0 { f == path } else { false } })
        {
            pending.remove(at: i)
            files[path] = nil
            return
        }
        guard access(path, F_OK) == 0 else { return }
        let keep = savePath(for: path)
        guard link(path, keep) == 0 else { return }
        pending.append(.remove(path: path, saved: keep, state: files[path]))
        files[path] = nil
    }

    /// The directory's entries are durable now: forget how to undo them.
    func directorySynced(_ directory: String) {
        let dir = Self.normalize(directory)
        pending.removeAll { change in
            guard change.directory == dir else { return false }
            switch change {
            case .create: break
            case .rename(_, _, let saved, _): if let saved { unlink(saved) }
            case .remove(_, let saved, _): unlink(saved)
            }
            return true
        }
    }

    // MARK: The power cut

    /// What survives of the bytes written after a file's last sync.
    package enum UnsyncedData: Sendable {
        /// Nothing (every file reverts to its last synced length).
        case lost
        /// A random prefix of them, per file (the disk wrote some pages in order, then stopped).
        case randomPrefix(seed: UInt64)
    }

    /// Applies the power cut to the real files: undoes directory changes that were not synced
    /// (newest first), then cuts each file back to what its syncs protected. Afterwards the
    /// journal is empty and every file counts as durable as it is.
    func applyPowerCut(unsynced: UnsyncedData) {
        for change in pending.reversed() {
            switch change {
            case .create(let path):
                unlink(path)
                files[path] = nil
            case .rename(let from, let to, let saved, let targetState):
                Glibc.rename(to, from)
                files[from] = files.removeValue(forKey: to)
                if let saved {
                    Glibc.rename(saved, to)
                    files[to] = targetState
                }
            case .remove(let path, let saved, let state):
                Glibc.rename(saved, path)
                files[path] = state
            }
        }
        pending = []
        var rng = SplitMix(seed: { if case .randomPrefix(let s) = unsynced { s } else { 0 } }())
        for (path, s) in files.sorted(by: { $0.key < $1.key }) {
            guard let size = Self.size(path) else { continue }
            for (offset, bytes) in s.undo.reversed() { Self.writeBytes(path, bytes, at: offset) }
            var keep = s.synced
            if case .randomPrefix = unsynced, s.written > s.synced {
                keep += Int64(rng.next() % UInt64(s.written - s.synced + 1))
            }
            if keep < size { Glibc.truncate(path, off_t(keep)) }
        }
        files = [:]
        removeSavedFolders()
    }

    /// Removes the folders of kept files (after `applyPowerCut`, or when the layer goes away).
    func removeSavedFolders() {
        for folder in savedFolders {
            for name in (try? PosixFileLayer.shared.contents(of: folder)) ?? [] { unlink(folder + "/" + name) }
            rmdir(folder)
        }
        savedFolders = []
    }

    // MARK: Helpers

    private func savePath(for path: String) -> String {
        let folder = Self.parent(of: path) + "/" + Self.savedFolder
        if savedFolders.insert(folder).inserted { mkdir(folder, 0o700) }
        savedCount += 1
        return folder + "/\(savedCount)"
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return normalize(String(path[..<slash]))
    }

    static func normalize(_ directory: String) -> String {
        var d = directory
        while d.count > 1 && d.hasSuffix("/") { d.removeLast() }
        return d
    }

    static func size(_ path: String) -> Int64? {
        var st = stat()
        return stat(path, &st) == 0 ? Int64(st.st_size) : nil
    }

    private static func readBytes(_ path: String, at offset: Int64, count: Int) -> [UInt8]? {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var out = [UInt8](repeating: 0, count: count)
        let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
        return n < 0 ? nil : Array(out.prefix(n))
    }

    private static func writeBytes(_ path: String, _ bytes: [UInt8], at offset: Int64) {
        let fd = Glibc.open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { Glibc.close(fd) }
        _ = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
    }
}

/// SplitMix64: a small seeded generator, so a power cut's random prefixes (and tests) reproduce.
package struct SplitMix: RandomNumberGenerator, Sendable {
    package var state: UInt64
    package init(seed: UInt64) { state = seed }
    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
