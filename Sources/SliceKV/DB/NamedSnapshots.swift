#if canImport(Glibc)
    import Glibc
#endif

/// Named snapshots: checkpoints kept inside the store's directory, in `snapshots/NAME/`, so
/// they survive closing and reopening (and a mount's `.snapshots/NAME`). Each is an ordinary
/// store, opened read-only (`openSnapshot`).
///
/// Creation is atomic: the checkpoint is made in `snapshots/.NAME.partial` and renamed into
/// place; leftovers of a crash (`.NAME.partial`, `.NAME.deleting`) are never listed and are
/// removed by the next `createSnapshot`. Creations and deletions of one store take turns
/// (`snapshotChanges`); a snapshot open for reading (its LOCK held shared) is not deleted.
///
/// Space: a snapshot's tables and sealed blob files are hard links to the store's own, so it
/// costs nothing until the store compacts them away; from then on the snapshot alone keeps
/// them. `Statistics.namedSnapshots` reports, per snapshot, its bytes and those no longer
/// shared with the store (what deleting it would give back, less what other snapshots
/// share).
extension Engine {
    static let snapshotsDirectoryName = "snapshots"

    var snapshotsDirectory: String { "\(path)/\(Engine.snapshotsDirectoryName)" }

    /// Checks a snapshot name: what a file name may be (1-255 bytes, no '/' or NUL, not `.`,
    /// `..` or starting with `.`, which partial snapshots use).
    static func validateSnapshotName(_ name: String) throws {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count <= 255, !bytes.contains(0x2f), !bytes.contains(0), bytes[0] != 0x2e else {
            throw SliceError(
                .invalidArgument, "a snapshot name is 1-255 bytes without '/' or NUL, not starting with '.': \(name)")
        }
    }

    func createSnapshot(named name: String) throws {
        try Engine.validateSnapshotName(name)
        try ensureWritable()
        try snapshotChanges.withLock { _ in
            let dir = snapshotsDirectory
            let final = "\(dir)/\(name)"
            if !fileLayer.exists(dir) { try fileLayer.createDirectory(dir, mode: 0o700) }
            guard !fileLayer.exists(final) else {
                throw SliceError(.invalidArgument, "a snapshot named \(name) exists already", path: final)
            }
            // Partial creations and deletions a crash left behind (of any name) go first.
            for leftover in try fileLayer.contents(of: dir) where leftover.hasPrefix(".") {
                try removeStoreDirectory("\(dir)/\(leftover)")
            }
            let partial = "\(dir)/.\(name).partial"
            try checkpoint(to: partial)
            try fileLayer.rename(partial, to: final)
            try fileLayer.syncDirectory(dir)
        }
    }

    /// Names of the complete snapshots, sorted.
    func snapshotNames() throws -> [String] {
        let dir = snapshotsDirectory
        guard fileLayer.exists(dir) else { return [] }
        return try fileLayer.contents(of: dir).filter {
            !$0.hasPrefix(".") && fileLayer.exists(FileNames.current("\(dir)/\($0)"))
        }.sorted()
    }

    func deleteSnapshot(named name: String) throws {
        try Engine.validateSnapshotName(name)
        try ensureWritable()
        try snapshotChanges.withLock { _ in
            let target = "\(snapshotsDirectory)/\(name)"
            guard fileLayer.exists(target) else {
                throw SliceError(.invalidArgument, "no snapshot named \(name)", path: target)
            }
            // Not while a reader has it open (readers hold its LOCK shared).
            let exclusive: DirectoryLock
            do {
                exclusive = try DirectoryLock(path: FileNames.lock(target), layer: fileLayer)
            } catch let e as SliceError where e.code == .locked {
                throw SliceError(.locked, "snapshot \(name) is open for reading", path: target)
            }
            try withExtendedLifetime(exclusive) {
                // Renamed out of the listing first: a crash halfway leaves a leftover, not a
                // damaged snapshot.
                let doomed = "\(snapshotsDirectory)/.\(name).deleting"
                if fileLayer.exists(doomed) { try removeStoreDirectory(doomed) }
                try fileLayer.rename(target, to: doomed)
                try removeStoreDirectory(doomed)
                try fileLayer.syncDirectory(snapshotsDirectory)
            }
        }
    }

    /// Removes a store directory and its files (snapshots hold no subdirectories).
    private func removeStoreDirectory(_ dir: String) throws {
        // CURRENT first: a directory left half removed no longer looks like a store.
        let files = try fileLayer.contents(of: dir)
        for name in files.filter({ $0 == "CURRENT" }) + files.filter({ $0 != "CURRENT" }) {
            try fileLayer.remove("\(dir)/\(name)")
        }
        try fileLayer.removeDirectory(dir)
    }

    /// Space of each named snapshot (from `lstat`: link counts tell shared files apart).
    func namedSnapshotSpace() -> [Statistics.NamedSnapshot] {
        guard let names = try? snapshotNames(), !names.isEmpty else { return [] }
        var live = Set<UInt64>()
        if let files = try? fileLayer.contents(of: path) {
            for f in files {
                var st = stat()
                if lstat("\(path)/\(f)", &st) == 0 { live.insert(UInt64(st.st_ino)) }
            }
        }
        return names.map { name in
            var s = Statistics.NamedSnapshot(name: name, bytes: 0, unsharedBytes: 0)
            let dir = "\(snapshotsDirectory)/\(name)"
            for f in (try? fileLayer.contents(of: dir)) ?? [] {
                var st = stat()
                guard lstat("\(dir)/\(f)", &st) == 0 else { continue }
                let bytes = UInt64(st.st_blocks) * 512
                s.bytes += bytes
                if !live.contains(UInt64(st.st_ino)) { s.unsharedBytes += bytes }
            }
            return s
        }
    }
}

extension SliceDB {
    /// Takes a named snapshot: a checkpoint of the store at this instant kept in
    /// `snapshots/NAME/` inside its directory, surviving reopening. See `NamedSnapshots.swift`.
    public func createSnapshot(named name: String) throws { try engine.createSnapshot(named: name) }

    /// The named snapshots, sorted.
    public func snapshotNames() throws -> [String] { try engine.snapshotNames() }

    /// Deletes a named snapshot (none of its readers may be open).
    public func deleteSnapshot(named name: String) throws { try engine.deleteSnapshot(named: name) }

    /// Opens a named snapshot of the store in `path` read-only (`options.readOnly` is set):
    /// an ordinary store, as it was when the snapshot was taken. Works while the store itself
    /// is open elsewhere (a snapshot shares no file that store writes).
    public static func openSnapshot(named name: String, of path: String, options: Options = Options()) throws
        -> SliceDB
    {
        try Engine.validateSnapshotName(name)
        let dir = "\(path)/\(Engine.snapshotsDirectoryName)/\(name)"
        guard options.fileLayer.exists(FileNames.current(dir)) else {
            throw SliceError(.invalidArgument, "no snapshot named \(name)", path: dir)
        }
        var o = options
        o.readOnly = true
        return try SliceDB(path: dir, options: o)
    }
}
