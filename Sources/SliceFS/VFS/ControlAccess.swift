import Foundation
import SliceKV

#if canImport(Glibc)
    import Glibc
#endif

extension ControlFile.Kind {
    /// The control file a name at the root stands for.
    init?(name: [UInt8]) { self.init(rawValue: String(decoding: name, as: UTF8.self)) }

    /// Its inode number (`InodeNumbers.controlBase` + its place in `allCases`).
    var ino: InodeNumber { InodeNumbers.controlBase + InodeNumber(Self.allCases.firstIndex(of: self)!) }

    init?(ino: InodeNumber) {
        guard InodeNumbers.isControl(ino) else { return nil }
        let i = Int(ino - InodeNumbers.controlBase)
        guard i < Self.allCases.count else { return nil }
        self = Self.allCases[i]
    }
}

/// The control files (`ControlFile`) as the filesystem answers them: resolved by name at the
/// root before the store is asked, never cached by the kernel (their content changes).
extension SliceFileSystem {
    func controlAttributes(_ kind: ControlFile.Kind) -> Attributes {
        let now = Timestamp.now
        return Attributes(
            ino: kind.ino, mode: S_IFREG | kind.mode, nlink: 1, uid: defaultUid, gid: defaultGid, size: 0, blocks: 0,
            atime: now, mtime: now, ctime: now)
    }

    func controlEntry(_ kind: ControlFile.Kind) -> EntryReply {
        EntryReply(ino: kind.ino, attributes: controlAttributes(kind), attrTimeout: 0, entryTimeout: 0)
    }

    /// Whether `uid` may open a control file as its mode says (`ControlFile.Kind.mode`): the
    /// files that act only by the mounting user and root, whatever the mount options; the
    /// others read-only, by anyone.
    func mayOpenControl(_ kind: ControlFile.Kind, uid: uid_t, writing: Bool) -> Bool {
        guard kind.isWritable else { return !writing }
        return uid == defaultUid || uid == 0
    }

    /// Opens a control file: its content is fixed at open (one `cat` sees one snapshot).
    func openControl(_ kind: ControlFile.Kind, flags: Int32, caller: Caller) throws -> OpenReply {
        let writing = flags & O_ACCMODE != O_RDONLY
        if !mayOpenControl(kind, uid: caller.uid, writing: writing) { throw FSError(EACCES) }
        let content: [UInt8]
        switch kind {
        case .stats: content = Array((control.statsText() + (requestCounts?.prometheusText ?? "")).utf8)
        case .statsJSON: content = Array((statsJSON() + "\n").utf8)
        default: content = Array(controlResults.get(kind).utf8)
        }
        return OpenReply(fh: handles.add(.control(ControlFile(kind: kind, content: content))), directIO: true)
    }

    /// The store's statistics object with the mount's request counts added as
    /// `"fuseRequests": {"lookup": N, ...}` (kinds seen at least once).
    private func statsJSON() -> String {
        let store = control.statsJSON()
        guard let counts = requestCounts, let close = store.lastIndex(of: "}") else { return store }
        let head = store[..<close].trimmingCharacters(in: .whitespacesAndNewlines)
        return head + (head.hasSuffix("{") ? "" : ",") + "\"fuseRequests\":" + counts.jsonObject + "}"
    }

    func readControl(_ c: ControlFile, offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        guard offset < UInt64(c.content.count) else { return 0 }
        let n = min(buffer.count, c.content.count - Int(offset))
        c.content.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + Int(offset), byteCount: n) }
        return n
    }

    /// A write to `.flush`, `.compact` or `.sync` runs the action and returns when it is done;
    /// a failure answers EIO and is what the file reads next.
    func writeControl(_ c: ControlFile, count: Int) throws -> Int {
        let result: String
        var failed = false
        do {
            switch c.kind {
            case .flush:
                flushAll()
                try control.flush()
            case .compact:
                flushAll()
                try control.compact()
            case .sync:
                flushAll()
                try control.sync()
            default: throw FSError(EPERM)
            }
            result = "ok \(c.kind.rawValue.dropFirst()) \(ISO8601DateFormatter().string(from: Date()))\n"
        } catch let e as FSError {
            throw e
        } catch {
            failed = true
            result = "error: \(error)\n"
        }
        controlResults.set(c.kind, result)
        if failed { throw FSError(EIO) }
        return count
    }
}
