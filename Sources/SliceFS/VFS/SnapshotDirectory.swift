import CFuse
import Foundation
import SliceKV

#if canImport(Glibc)
    import Glibc
#endif

/// `.snapshots` at the root of a mount: the store's named snapshots (`SliceDB.createSnapshot`,
/// kept in DATA_DIR/snapshots/NAME) as read-only trees.
///
/// - `mkdir .snapshots/NAME` commits every open file, then takes a snapshot: the tree at that
///   instant (contents, modes, owners, times, symlinks, xattrs, hard links).
/// - `ls .snapshots` lists them; `rmdir .snapshots/NAME` deletes one (its view is closed first:
///   descriptors still open in it then fail with ESTALE). Only the mounting user and root may
///   do either; at most `maxSnapshots` exist (EMLINK).
/// - `.snapshots/NAME/...` is served by a view: a `SliceFileSystem` over the snapshot's store,
///   opened read-only on first use, with its numbers mapped by `SnapshotInodes`. Every change
///   in a view answers EROFS.
///
/// Space: a snapshot shares the store's files until compaction replaces them; then it keeps
/// them (`slice_snapshot_unshared_bytes` in `.stats`).
final class SnapshotDirectory: @unchecked Sendable {
    /// The number of `.snapshots` itself (in the control files' range).
    static let ino: InodeNumber = InodeNumbers.controlBase + 15
    static let name: [UInt8] = Array(".snapshots".utf8)
    /// Most snapshots a mount makes (mkdir past it: EMLINK). Why a bound: each snapshot in use
    /// is an open store (a few descriptors and about a megabyte), and `ls -l .snapshots` opens
    /// them all; 256 keeps that far below this machine's 20,000 descriptors a process.
    static let maxSnapshots = 256

    /// One open snapshot.
    struct View: Sendable {
        let id: UInt64
        let name: String
        let db: SliceDB
        let fs: SliceFileSystem
    }

    let live: SliceFileSystem
    let inodes = SnapshotInodes()
    private let views = Locked<(byName: [String: View], byID: [UInt64: View], next: UInt64)>(([:], [:], 1))
    /// Listings of open `.snapshots` handles, fixed at offset 0.
    private let listings = Locked<(next: UInt64, byHandle: [UInt64: [String]])>((1, [:]))
    /// Serializes creating, opening and deleting snapshots.
    private let changes = NSLock()

    /// The live filesystem's store, whose snapshots this lists.
    let liveDB: SliceDB

    init(live: SliceFileSystem, db: SliceDB) {
        self.live = live
        liveDB = db
    }

    // MARK: Views

    /// The view of snapshot `name`, opened on first use; nil when there is no such snapshot.
    func view(named name: String) throws -> View? {
        if let v = views.withLock({ $0.byName[name] }) { return v }
        changes.lock()
        defer { changes.unlock() }
        if let v = views.withLock({ $0.byName[name] }) { return v }
        guard try liveDB.snapshotNames().contains(name) else { return nil }
        var o = Options()
        o.blockCacheBytes = 8 << 20  // each view has its own cache: keep it small
        o.maxOpenFiles = 256
        o.blobThreshold = liveDB.options.blobThreshold
        let db = try SliceDB.openSnapshot(named: name, of: liveDB.path, options: o)
        let fs = try SliceFileSystem(db: db, uid: live.defaultUid, gid: live.defaultGid, controlFiles: false)
        return views.withLock { s in
            let v = View(id: s.next, name: name, db: db, fs: fs)
            s.next += 1
            s.byName[name] = v
            s.byID[v.id] = v
            return v
        }
    }

    func resolveView(_ id: UInt64) throws -> View {
        guard let v = views.withLock({ $0.byID[id] }) else { throw FSError(ESTALE) }
        return v
    }

    /// The view and inner number of a number in the snapshot range.
    func resolve(_ outer: InodeNumber) throws -> (View, InodeNumber) {
        guard let inner = inodes.inner(outer), let v = views.withLock({ $0.byID[inner.view] }) else {
            throw FSError(ESTALE)
        }
        return (v, inner.ino)
    }

    /// An entry of a view given to the kernel: its number mapped, one lookup counted.
    func translated(_ e: EntryReply, _ v: View, counting: Bool = true) -> EntryReply {
        guard e.ino != 0 else { return e }
        var out = e
        out.ino = inodes.outer(.init(view: v.id, ino: e.ino), counting: counting)
        out.attributes?.ino = out.ino
        return out
    }

    func translated(_ a: Attributes, _ v: View) -> Attributes {
        var out = a
        out.ino = inodes.outer(.init(view: v.id, ino: a.ino), counting: false)
        return out
    }

    func closeAll() {
        let all = views.withLock { s -> [View] in
            defer { s = ([:], [:], s.next) }
            return Array(s.byID.values)
        }
        for v in all {
            inodes.drop(view: v.id)
            try? v.db.close()
        }
    }

    // MARK: The directory itself

    func attributes() -> Attributes {
        let names = (try? liveDB.snapshotNames()) ?? []
        let dir = "\(liveDB.path)/snapshots"
        var st = stat()
        let t = lstat(dir, &st) == 0 ? Timestamp(st.st_mtim) : Timestamp.now
        return Attributes(
            ino: SnapshotDirectory.ino, mode: S_IFDIR | 0o755, nlink: UInt64(2 + names.count), uid: live.defaultUid,
            gid: live.defaultGid, size: 4096, blocks: 8, atime: t, mtime: t, ctime: t)
    }

    /// The root entry for `.snapshots` (attributes cached for no time: they change with mkdir).
    func entry() -> EntryReply {
        EntryReply(ino: SnapshotDirectory.ino, attributes: attributes(), attrTimeout: 0, entryTimeout: 0)
    }

    func lookup(_ name: [UInt8]) throws -> EntryReply {
        guard let v = try view(named: String(decoding: name, as: UTF8.self)) else {
            return .negative(timeout: 0)
        }
        return try translated(v.fs.lookupRoot(), v)
    }

    func mkdir(_ name: [UInt8], caller: Caller) throws -> EntryReply {
        guard caller.uid == live.defaultUid || caller.uid == 0 else { throw FSError(EACCES) }
        let text = String(decoding: name, as: UTF8.self)
        guard Array(text.utf8) == name, !name.isEmpty, name[0] != 0x2e else { throw FSError(EINVAL) }
        do {
            changes.lock()
            defer { changes.unlock() }
            let existing = try liveDB.snapshotNames()
            if existing.contains(text) { throw FSError(EEXIST) }
            if existing.count >= SnapshotDirectory.maxSnapshots { throw FSError(EMLINK) }
            // What was written before the mkdir, open files included, is in the snapshot.
            live.flushAll()
            try liveDB.createSnapshot(named: text)
        }
        let made = try lookup(name)
        guard made.ino != 0 else { throw FSError(ENOENT) }  // dropped by a racing rmdir
        return made
    }

    func rmdir(_ name: [UInt8], caller: Caller) throws {
        guard caller.uid == live.defaultUid || caller.uid == 0 else { throw FSError(EACCES) }
        let text = String(decoding: name, as: UTF8.self)
        changes.lock()
        defer { changes.unlock() }
        guard try liveDB.snapshotNames().contains(text) else { throw FSError(ENOENT) }
        if let v = views.withLock({ s -> View? in
            guard let v = s.byName.removeValue(forKey: text) else { return nil }
            s.byID[v.id] = nil
            return v
        }) {
            inodes.drop(view: v.id)
            try v.db.close()
        }
        do {
            try liveDB.deleteSnapshot(named: text)
        } catch let e as SliceError where e.code == .locked {
            throw FSError(EBUSY)  // open for reading by another process (`slice get --snapshot`)
        }
    }

    func opendir() -> OpenReply {
        let names = (try? liveDB.snapshotNames()) ?? []
        let fh = listings.withLock { s -> UInt64 in
            defer { s.next += 1 }
            s.byHandle[s.next] = names
            return s.next
        }
        return OpenReply(fh: fh)
    }

    func readdir(fh: UInt64, offset: Int64, plus: Bool, fill: (DirectoryEntry) -> Bool) throws {
        guard let names = listings.withLock({ $0.byHandle[fh] }) else { throw FSError(EBADF) }
        var i = Int(offset)
        while i < names.count + 2 {
            var entry: DirectoryEntry
            switch i {
            case 0: entry = DirectoryEntry(name: [0x2e], ino: SnapshotDirectory.ino, type: S_IFDIR, nextOffset: 1)
            case 1: entry = DirectoryEntry(name: [0x2e, 0x2e], ino: InodeNumbers.root, type: S_IFDIR, nextOffset: 2)
            default:
                let name = names[i - 2]
                guard let v = try view(named: name) else {
                    i += 1
                    continue
                }
                let root = try v.fs.lookupRoot()
                entry = DirectoryEntry(
                    name: Array(name.utf8), ino: inodes.outer(.init(view: v.id, ino: root.ino), counting: false),
                    type: S_IFDIR, nextOffset: Int64(i + 1))
                // Counted now (a FORGET racing this reply cannot drop the number under it),
                // given back if the entry is not sent.
                if plus { entry.entry = translated(root, v, counting: true) }
            }
            guard fill(entry) else {
                if let e = entry.entry { _ = inodes.forget(e.ino, 1) }
                return
            }
            i += 1
        }
    }

    func releasedir(fh: UInt64) { _ = listings.withLock { $0.byHandle.removeValue(forKey: fh) } }
}
