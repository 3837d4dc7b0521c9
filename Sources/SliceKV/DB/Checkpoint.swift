#if canImport(Glibc)
    import Glibc
#endif

/// Checkpoints: a consistent copy of a store at one instant, taken while writes continue,
/// that opens as an ordinary store.
///
/// How: the memtables are flushed (so every write acknowledged before the call is in a table),
/// then one version is pinned under the manifest lock and its files are given to the
/// destination: tables and sealed blob files are immutable, so they are hard-linked (copied
/// where links fail: another filesystem); a blob file still being appended to is copied as it
/// is at that moment (it holds every record the version references), since the store will go
/// on writing (and may cut) it. A
/// MANIFEST describing that version alone, and a CURRENT naming it, are written last, each
/// synced. The destination holds no WAL: it is the store as of the flush, a prefix of the
/// acknowledged writes (writes that land during the checkpoint may or may not be in it, but
/// never part of one batch).
///
/// Holding the version keeps every file it names on the disk until the links are made; later
/// compactions and garbage collection delete only the store's names.
extension Engine {
    func checkpoint(to destination: String) throws {
        try ensureWritable()
        guard !fileLayer.exists(destination) else {
            throw SliceError(.invalidArgument, "the checkpoint directory exists already", path: destination)
        }
        try flush()
        let version = manifestLock.withLock { lock.withLock { versions.current } }
        try fileLayer.createDirectory(destination, mode: 0o700)
        do {
            try withExtendedLifetime(version) {
                for level in version.levels {
                    for f in level {
                        try fileLayer.link(FileNames.table(path, f.number), to: FileNames.table(destination, f.number))
                    }
                }
                for (number, account) in version.blobs {
                    let from = FileNames.blob(path, number)
                    let to = FileNames.blob(destination, number)
                    if account.sealedBytes != nil {
                        try fileLayer.link(from, to: to)
                    } else {
                        try fileLayer.copy(from, to: to, length: fileLayer.fileSize(from))
                    }
                }
                // The lock file a store has (a read-only open expects it).
                _ = try fileLayer.create(FileNames.lock(destination))
                try fileLayer.syncDirectory(destination)
                try manifestLock.withLock { try versions.writeManifest(of: version, to: destination) }
            }
        } catch {
            // Leave nothing that looks like a store.
            try? fileLayer.remove(FileNames.current(destination))
            throw error
        }
        counters.checkpoints.add(1, ordering: .relaxed)
    }
}
