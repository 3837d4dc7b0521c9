import CFuse
import SliceKV

#if canImport(Glibc)
    import Glibc
#endif

/// Regular files' content through open handles: open and create, reads and writes buffered in
/// `OpenFile`, commits, truncate, fallocate and seeks for data and holes.
extension SliceFileSystem {
    private static let shift = UInt64(FileContent.chunkShift)
    private static let chunkMask = UInt64(FileContent.chunkSize - 1)

    // MARK: Open and close

    public func open(_ ino: InodeNumber, flags: Int32, caller: Caller) throws -> OpenReply {
        if let kind = ControlFile.Kind(ino: ino) { return try openControl(kind, flags: flags, caller: caller) }
        var n = try node(ino)
        switch n.kind {
        case .directory: throw FSError(EISDIR)
        case .file: break
        default: throw FSError(ENXIO)
        }
        let writable = flags & O_ACCMODE != O_RDONLY
        if writable || flags & O_TRUNC != 0, case .plain = n.content {
            n = try namespace.adopted(n)
            inodes.invalidate(ino)
        }
        // nil: an unlink that raced this open freed the inode (as if the open came after it).
        guard let f = openFiles.acquire(ino, content: n.content) else { throw FSError(ENOENT) }
        f.state.withLock { s in
            // An API-written file opened read-only reads its value in place; a writer moved it.
            if case .plain = s.content, n.content == .chunks { s.content = .chunks }
            if case .plain = s.content { s.plainKey = n.key }
        }
        do {
            if flags & O_TRUNC != 0 { try truncate(n, to: 0) }
        } catch {
            release(f)
            throw error
        }
        // Pages stay valid across opens when every change goes through this mount (`keepsPages`).
        // A read-only handle has nothing to commit: no FLUSH round trip at close.
        var reply = OpenReply(fh: handles.add(.file(f, writable: writable)), keepCache: keepsPages)
        reply.noFlush = !writable
        return reply
    }

    public func create(parent: InodeNumber, name: [UInt8], mode: mode_t, flags: Int32, caller: Caller) throws -> (
        EntryReply, OpenReply
    ) {
        if isControlName(parent, name) { throw FSError(EEXIST) }
        let (path, r) = try child(parent, name)
        let n = try namespace.create(.file, at: r, in: try parentResolved(parent), mode: mode, caller: caller)
        inodes.invalidate(parent)
        let entry = try reply(n, path: path, resolved: r, made: true)
        // A new inode (numbers are never reused) cannot be one an unlink freed.
        guard let f = openFiles.acquire(n.ino, content: .chunks) else { throw FSError(EIO) }
        f.state.withLock { _ = $0.knownSize { 0 } }
        let writable = flags & O_ACCMODE != O_RDONLY
        var reply: OpenReply
        if flags & O_ACCMODE == O_WRONLY {
            // A new file written write-only (cp, tar -x, rsync, shell redirections): two of the
            // six round trips of a small file's create go. Direct I/O spares the GETXATTR
            // (`security.capability`) the kernel sends before each write through its cache; the
            // handle cannot read or map, since Linux 6.6 a direct write drops any cached page it
            // overwrites (other handles stay coherent), and the privilege drops the kernel would
            // have made are made by `write`. No FLUSH: the commit comes at RELEASE, and `write`
            // refuses with ENOSPC what the disk could not take then (`DiskSpace`); `fsync`
            // still commits and reports.
            reply = OpenReply(
                fh: handles.add(.file(f, writable: true, uncached: true)), directIO: true, keepCache: keepsPages)
            reply.noFlush = true
        } else {
            reply = OpenReply(fh: handles.add(.file(f, writable: writable)), keepCache: keepsPages)
        }
        return (entry, reply)
    }

    public func flush(_ ino: InodeNumber, fh: UInt64, caller: Caller) throws {
        guard case .file(let f, _, _) = handles.handle(fh) else { return }
        _ = try commitOrHold(f)
    }

    public func release(_ ino: InodeNumber, fh: UInt64) {
        guard let h = handles.remove(fh), case .file(let f, _, _) = h else { return }
        release(f)
    }

    private func release(_ f: OpenFile) {
        do { _ = try commitOrHold(f) } catch {
            SliceFileSystem.log("write-back of inode \(f.ino) at close failed: \(error)")
        }
        switch openFiles.release(f) {
        case .notLast: return
        case .removed: gone(f)
        case .keptUnclean:
            // Held by the write-back (which commits, then retires it), or written by another
            // handle since this one's commit, or a commit failed: the write-back takes it.
            if writeBack.hold(f, commit: { [weak self] in self?.writeBackHeld($0) }) { return }
            writeBackHeld(f)
        }
    }

    /// A file left the open-file table: its buffers go (empty unless its writes could not
    /// be committed), and an unlinked one is freed.
    private func gone(_ f: OpenFile) {
        budget.add(
            -f.state.withLock { s in
                defer {
                    s.dirty = [:]
                    s.storedBefore = [:]
                    s.staged = [:]
                    endStaging(&s)
                }
                return s.dirtyBytes
            })
        purgeIfUnused(f.ino)
    }

    public func fsync(_ ino: InodeNumber, fh: UInt64, dataOnly: Bool) throws {
        if case .file(let f, _, _) = handles.handle(fh) { try commit(f) }
        try control.sync()
    }

    /// Commits `f`, or leaves it to the write-back (`WriteBack`) when it was committed less
    /// than a window ago and holds little; true when held.
    private func commitOrHold(_ f: OpenFile) throws -> Bool {
        let small = f.state.withLock { s in
            (!s.dirty.isEmpty || s.sizeChanged || s.modifiedAt != nil) && s.dirtyBytes <= WriteBack.maxDirtyBytes
                && s.staged.isEmpty && s.stager == nil && s.stagingError == nil
        }
        if small && !control.syncsEveryWrite && !budget.isExceeded && writeBack.isHot(f.ino)
            && writeBack.hold(f, commit: { [weak self] in self?.writeBackHeld($0) })
        {
            return true
        }
        try commit(f)
        return false
    }

    /// The write-back's commit of a held file; once it is clean and closed it leaves the table.
    /// Writes that cannot be committed are dropped once no handle is open (as a failed close
    /// drops them), so a failing file does not stay forever.
    func writeBackHeld(_ f: OpenFile) {
        var failed = false
        do { try commit(f) } catch {
            failed = true
            SliceFileSystem.log("write-back of inode \(f.ino) failed: \(error) (its unwritten bytes are dropped)")
        }
        if openFiles.retire(f) || (failed && openFiles.discard(f)) { gone(f) }
    }

    // MARK: Reads and writes

    public func read(_ ino: InodeNumber, fh: UInt64, offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws
        -> Int
    {
        switch handles.handle(fh) {
        case .control(let c): return readControl(c, offset: offset, into: buffer)
        case .file(let f, _, _):
            let content = namespace.content
            // Staged chunks are in a blob file's buffers, not readable before their commit.
            if f.state.withLock({ !$0.staged.isEmpty }) { try commit(f) }
            return try f.state.withLock { s -> Int in
                if case .plain(let size) = s.content, let key = s.plainKey {
                    guard offset < size else { return 0 }
                    let n = Int(min(UInt64(buffer.count), size - offset))
                    return try namespace.store.read(
                        key, keyspace: .user, offset: offset,
                        into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n]))
                        ?? 0
                }
                if s.freedElsewhere { throw FSError(ESTALE) }
                let size = try s.knownSize { try content.size(ino) }
                let dirty = s.dirty
                return try content.read(ino, size: size, offset: offset, into: buffer) { dirty[$0] }
            }
        default: throw FSError(EBADF)
        }
    }

    public func write(_ ino: InodeNumber, fh: UInt64, offset: UInt64, data: UnsafeRawBufferPointer, caller: Caller)
        throws -> Int
    {
        switch handles.handle(fh) {
        case .control(let c): return try writeControl(c, count: data.count)
        case .file(let f, let writable, let uncached):
            guard writable else { throw FSError(EBADF) }
            if uncached { try dropPrivileges(ino, caller: caller) }
            guard offset < maxFileSize else { throw FSError(EFBIG) }
            // A write that would end past the largest size is cut there, as ext4 does.
            let count = Int(min(UInt64(data.count), maxFileSize - offset))
            if count == 0 { return 0 }
            let first = offset >> SliceFileSystem.shift
            let last = (offset + UInt64(count) - 1) >> SliceFileSystem.shift
            let content = namespace.content
            try diskSpace.check(
                buffered: budget.bytes + count + 2 * FileContent.chunkSize, kept: control.spaceReserveShortfall)
            let stageable = (namespace.store.stagingThreshold ?? Int.max) <= FileContent.chunkSize
            while true {
                let needsCommit = try f.state.withLock { s -> Bool in
                    if s.freedElsewhere { throw FSError(ESTALE) }
                    // A chunk staged already is published before it is written again.
                    if !s.staged.isEmpty && (first...last).contains(where: { s.staged[$0] != nil }) { return true }
                    let fresh = (first...last).filter { s.dirty[$0] == nil }.count
                    if !s.dirty.isEmpty && s.dirtyBytes + fresh * FileContent.chunkSize > dirtyLimit {
                        return true
                    }
                    let size = try s.knownSize { try content.size(ino) }
                    var done = 0
                    for index in first...last {
                        let base = index << SliceFileSystem.shift
                        let start = max(offset, base)
                        let end = min(offset + UInt64(count), base + UInt64(FileContent.chunkSize))
                        if stageable && start == base && end == base + UInt64(FileContent.chunkSize),
                            try stage(
                                f, &s, index,
                                UnsafeRawBufferPointer(rebasing: data[done..<(done + FileContent.chunkSize)]))
                        {
                            done += FileContent.chunkSize
                            continue
                        }
                        if s.dirty[index] == nil {
                            var buffer: [UInt8]
                            if start == base && end == base + UInt64(FileContent.chunkSize) {
                                // Overwritten whole: only the stored length is needed (for blocks;
                                // none past the stored size, as in a file being written), and the
                                // buffer is filled from the write without zeroing.
                                s.storedBefore[index] = s.mayBeStored(index) ? try content.storedLength(ino, index) : 0
                                buffer = [UInt8](unsafeUninitializedCapacity: FileContent.chunkSize) { b, n in
                                    UnsafeMutableRawPointer(b.baseAddress!).copyMemory(
                                        from: data.baseAddress!.advanced(by: done), byteCount: FileContent.chunkSize)
                                    n = FileContent.chunkSize
                                }
                                s.dirty[index] = buffer
                                budget.add(FileContent.chunkSize)
                                done += FileContent.chunkSize
                                continue
                            } else {
                                let old = s.mayBeStored(index) ? try content.chunk(ino, index) ?? [] : []
                                s.storedBefore[index] = old.count
                                // The stored bytes within the size, then zeros, in one buffer.
                                let keep = Int(min(UInt64(old.count), size > base ? size - base : 0))
                                buffer = [UInt8](unsafeUninitializedCapacity: FileContent.chunkSize) { b, n in
                                    let raw = UnsafeMutableRawPointer(b.baseAddress!)
                                    old.withUnsafeBytes {
                                        if keep > 0 { raw.copyMemory(from: $0.baseAddress!, byteCount: keep) }
                                    }
                                    memset(raw + keep, 0, FileContent.chunkSize - keep)
                                    n = FileContent.chunkSize
                                }
                            }
                            s.dirty[index] = buffer
                            budget.add(FileContent.chunkSize)
                        }
                        let length = Int(end - start)
                        s.dirty[index]!.withUnsafeMutableBytes { b in
                            b.baseAddress!.advanced(by: Int(start - base)).copyMemory(
                                from: data.baseAddress!.advanced(by: done), byteCount: length)
                        }
                        done += length
                    }
                    let newEnd = offset + UInt64(count)
                    if newEnd > size {
                        s.size = newEnd
                        s.sizeChanged = true
                    }
                    s.modifiedAt = .now
                    return false
                }
                if !needsCommit { break }
                try commit(f)
            }
            if budget.isExceeded
                || f.state.withLock({ $0.dirtyBytes >= dirtyLimit || $0.stagedBytes >= OpenFile.stagedLimit })
            {
                try commit(f)
            }
            return count
        default: throw FSError(EBADF)
        }
    }

    /// Writes a whole chunk straight to a blob file (`StagedValueWriter`) instead of a buffer;
    /// false when no staging slot is free (the caller buffers it). Why: a stream costs one copy
    /// of each byte in user space, and the blob file's write-behind takes the `pwrite` off the
    /// request's thread. REQUIRES: `f.state`, and `index` not staged.
    private func stage(
        _ f: OpenFile, _ s: inout OpenFile.State, _ index: UInt64, _ bytes: UnsafeRawBufferPointer
    ) throws -> Bool {
        if s.stager == nil {
            guard stagingSlots.take() else { return false }
            s.stager = namespace.store.stagedValueWriter()
        }
        if s.storedBefore[index] == nil {
            s.storedBefore[index] = s.mayBeStored(index) ? try namespace.content.storedLength(f.ino, index) : 0
        }
        do {
            s.staged[index] = try s.stager!.stage(bytes)
        } catch {
            // The writer dropped every staged chunk with it: the next commit says so.
            s.staged = [:]
            endStaging(&s)
            s.stagingError = error
            throw error
        }
        if let buffer = s.dirty.removeValue(forKey: index) { budget.add(-buffer.count) }
        return true
    }

    /// Gives up a file's staging writer (after its commit, or with what it staged).
    private func endStaging(_ s: inout OpenFile.State) {
        guard let stager = s.stager else { return }
        stager.abort()
        s.stager = nil
        stagingSlots.give()
    }

    /// What the kernel does before a write through its page cache (`file_remove_privs`) but
    /// leaves to us for a direct one: a writer without CAP_FSETID (taken as uid 0) clears the
    /// set-user-ID bit and a group-executable file's set-group-ID bit; any write drops the
    /// `security.capability` attribute. The kernel's cached attributes are then dropped.
    private func dropPrivileges(_ ino: InodeNumber, caller: Caller) throws {
        let n = try node(ino)
        guard let rec = n.record else { return }
        let capability = Array("security.capability".utf8)
        let setID =
            caller.uid != 0
            && (rec.mode & UInt32(Glibc.S_ISUID) != 0
                || (rec.mode & UInt32(Glibc.S_ISGID) != 0 && rec.mode & UInt32(S_IXGRP) != 0))
        guard setID || rec.xattrs[capability] != nil else { return }
        _ = try namespace.updateRecord(inodes.entry(ino)?.resolved, ino: ino) { r in
            if setID {
                r.mode &= ~UInt32(Glibc.S_ISUID)
                if r.mode & UInt32(S_IXGRP) != 0 { r.mode &= ~UInt32(Glibc.S_ISGID) }
            }
            r.xattrs.removeValue(forKey: capability)
        }
        inodes.invalidate(ino)
        notifier?.invalidateAttributes(ino)
    }

    /// Writes an open file's buffered chunks, size and times as one batch.
    func commit(_ f: OpenFile) throws {
        let ns = namespace
        try ns.inodeLocks.withLock(f.ino) {
            try f.state.withLock { s in
                if let e = s.stagingError {
                    s.stagingError = nil
                    throw e
                }
                guard !s.dirty.isEmpty || !s.staged.isEmpty || s.sizeChanged || s.modifiedAt != nil, let size = s.size
                else {
                    return
                }
                guard var rec = try ns.record(f.ino) else { throw FSError(EIO) }
                var batch = WriteBatch()
                var blocks = Int64(rec.blocks)
                for (index, value) in s.staged where index << SliceFileSystem.shift < size {
                    batch.put(FileContent.chunkKey(f.ino, index), value, keyspace: FSKeyspace.chunks)
                    blocks += Int64(value.count) - Int64(s.storedBefore[index] ?? 0)
                }
                // Buffered chunks big enough for a blob file are staged as well: one copy into
                // the blob file's buffer, where putting them in the batch copied them twice
                // (batch, blob file) and grew a batch of megabytes (a commit after random writes).
                let threshold = ns.store.stagingThreshold ?? Int.max
                var stager = s.stager
                do {
                    for (index, chunk) in s.dirty {
                        let base = index << SliceFileSystem.shift
                        let key = FileContent.chunkKey(f.ino, index)
                        let before = Int64(s.storedBefore[index] ?? 0)
                        if base >= size {
                            batch.delete(key, keyspace: FSKeyspace.chunks)
                            blocks -= before
                            continue
                        }
                        let length = Int(min(UInt64(FileContent.chunkSize), size - base))
                        if length >= threshold {
                            if stager == nil { stager = ns.store.stagedValueWriter() }
                            let staged = try chunk.withUnsafeBytes {
                                try stager!.stage(UnsafeRawBufferPointer(rebasing: $0[0..<length]))
                            }
                            batch.put(key, staged, keyspace: FSKeyspace.chunks)
                        } else {
                            batch.put(
                                key, length == chunk.count ? chunk : Array(chunk[0..<length]),
                                keyspace: FSKeyspace.chunks)
                        }
                        blocks += Int64(length) - before
                    }
                    if s.sizeChanged { FileContent.setSize(f.ino, size, in: &batch) }
                    try finishContentChange(
                        f.ino, &rec, blocks: blocks, modified: s.modifiedAt, size: size, batch, stager: stager)
                } catch {
                    // A failed staged commit took its staged chunks; buffers stay for a retry.
                    stager?.abort()
                    s.staged = [:]
                    endStaging(&s)
                    throw error
                }
                s.staged = [:]
                endStaging(&s)  // committed: its abort does nothing
                budget.add(-s.dirtyBytes)
                s.dirty = [:]
                s.storedBefore = [:]
                s.sizeChanged = false
                s.modifiedAt = nil
                writeBack.committed(f.ino)
                s.storedSize = size
            }
        }
    }

    /// Ends a change to a file's content: its record gets the new block count (and, when
    /// `modified` is given, that mtime and ctime) in the same batch, which is written; the cached
    /// node gets the record and the committed `size` (nil: unknown). REQUIRES: the inode's stripe.
    private func finishContentChange(
        _ ino: InodeNumber, _ rec: inout InodeRecord, blocks: Int64, modified: Timestamp?, size: UInt64?,
        _ batch: WriteBatch, stager: StagedValueWriter? = nil
    ) throws {
        var batch = batch
        if let modified {
            // The time of the last write (a write-back commits later); ctime never goes back.
            rec.mtime = modified
            rec.ctime = max(rec.ctime, modified)
        }
        rec.blocks = UInt64(max(0, blocks))
        batch.put(FSKeyspace.inodeKey(ino), rec.encode(), keyspace: FSKeyspace.inodes)
        if let stager {
            try namespace.store.write(batch, staged: stager)
        } else {
            try namespace.store.write(batch, sync: false)
        }
        inodes.contentChanged(ino, record: rec, size: size)
    }

    // MARK: Size changes

    /// `truncate(2)`: shrinking deletes the chunks past the end and trims the last; growing
    /// writes only the new size (the rest is a hole).
    func truncate(_ node: Node, to size: UInt64) throws {
        guard size <= maxFileSize else { throw FSError(EFBIG) }
        let n = try namespace.adopted(node)
        let f = openFiles.file(n.ino)
        if let f { try commit(f) }
        let ns = namespace
        try ns.inodeLocks.withLock(n.ino) {
            guard var rec = try ns.record(n.ino) else { throw FSError(EIO) }
            let old = try ns.content.size(n.ino)
            var batch = WriteBatch()
            var blocks = Int64(rec.blocks)
            if size < old {
                let keepChunks = (size + SliceFileSystem.chunkMask) >> SliceFileSystem.shift
                blocks -= Int64(
                    try ns.content.deleteChunks(n.ino, from: keepChunks, in: &batch) { b in
                        try ns.store.write(b, sync: false)
                        b = WriteBatch()
                    })
                let within = Int(size & SliceFileSystem.chunkMask)
                if within != 0, let last = try ns.content.chunk(n.ino, size >> SliceFileSystem.shift),
                    last.count > within
                {
                    batch.put(
                        FileContent.chunkKey(n.ino, size >> SliceFileSystem.shift), Array(last[0..<within]),
                        keyspace: FSKeyspace.chunks)
                    blocks -= Int64(last.count - within)
                }
            }
            FileContent.setSize(n.ino, size, in: &batch)
            try finishContentChange(n.ino, &rec, blocks: blocks, modified: .now, size: size, batch)
            f?.state.withLock { s in
                s.size = size
                s.storedSize = size
                s.sizeChanged = false
            }
        }
    }

    public func fallocate(_ ino: InodeNumber, fh: UInt64, mode: Int32, offset: UInt64, length: UInt64) throws {
        guard case .file(let f, let writable, _) = handles.handle(fh) else { throw FSError(EBADF) }
        guard writable else { throw FSError(EBADF) }
        let (end, overflow) = offset.addingReportingOverflow(length)
        guard !overflow, end <= maxFileSize else { throw FSError(EFBIG) }
        let keepSize = mode & slice_falloc_keep_size != 0
        let punch = mode & slice_falloc_punch_hole != 0
        guard mode & ~(slice_falloc_keep_size | slice_falloc_punch_hole) == 0, !punch || keepSize else {
            throw FSError(EOPNOTSUPP)
        }
        let n = try node(ino)
        if punch {
            try punchHole(n, f, offset: offset, end: end)
            return
        }
        // Space is not reserved ahead (the store has no per-file allocation): mode 0 makes the
        // size what it would be, and the bytes stay a hole until written.
        try commit(f)
        let size = try f.state.withLock { $0.size } ?? namespace.content.size(ino)
        if !keepSize, end > size {
            try truncate(n, to: end)
        }
    }

    /// Zeroes `[offset, end)` inside the file: whole chunks are deleted, partial ones trimmed.
    private func punchHole(_ n: Node, _ f: OpenFile, offset: UInt64, end: UInt64) throws {
        try commit(f)
        let ns = namespace
        try ns.inodeLocks.withLock(n.ino) {
            guard var rec = try ns.record(n.ino) else { throw FSError(EIO) }
            let size = try ns.content.size(n.ino)
            let stop = min(end, size)
            guard offset < stop else { return }
            var batch = WriteBatch()
            var blocks = Int64(rec.blocks)
            // Only the chunks that exist in the range (a scan of keys), not every index in it:
            // punching 1 TiB of a sparse file costs what it holds.
            var stored: [UInt64] = []
            try ns.store.scan(
                FSKeyspace.chunks, from: FileContent.chunkKey(n.ino, offset >> SliceFileSystem.shift),
                to: FileContent.chunkKey(n.ino, ((stop - 1) >> SliceFileSystem.shift) + 1), values: false
            ) { key, _ in
                stored.append(key.suffix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
                return true
            }
            for index in stored {
                let base = index << SliceFileSystem.shift
                let from = max(offset, base) - base
                let to = min(stop, base + UInt64(FileContent.chunkSize)) - base
                guard var chunk = try ns.content.chunk(n.ino, index) else { continue }
                if from == 0 && (to == UInt64(FileContent.chunkSize) || to >= UInt64(chunk.count)) {
                    batch.delete(FileContent.chunkKey(n.ino, index), keyspace: FSKeyspace.chunks)
                    blocks -= Int64(chunk.count)
                } else if from < UInt64(chunk.count) {
                    let upper = Int(min(to, UInt64(chunk.count)))
                    chunk.withUnsafeMutableBytes { _ = memset($0.baseAddress! + Int(from), 0, upper - Int(from)) }
                    batch.put(FileContent.chunkKey(n.ino, index), chunk, keyspace: FSKeyspace.chunks)
                }
                if batch.count >= namespace.store.maxBatchOperations
                    || batch.byteSize >= namespace.store.maxBatchBytes - 2 * FileContent.chunkSize
                {
                    try ns.store.write(batch, sync: false)
                    batch = WriteBatch()
                }
            }
            try finishContentChange(n.ino, &rec, blocks: blocks, modified: .now, size: size, batch)
        }
    }

    public func lseek(_ ino: InodeNumber, fh: UInt64, offset: UInt64, whence: Int32) throws -> UInt64 {
        guard case .file(let f, _, _) = handles.handle(fh) else { throw FSError(EBADF) }
        let (size, dirty) = try f.state.withLock { s -> (UInt64, Set<UInt64>) in
            (try s.knownSize { try namespace.content.size(ino) }, Set(s.dirty.keys).union(s.staged.keys))
        }
        guard whence == slice_seek_data || whence == slice_seek_hole else { throw FSError(EINVAL) }
        guard
            let found = try namespace.content.seek(
                ino, size: size, offset: offset, data: whence == slice_seek_data, dirty: dirty)
        else { throw FSError(ENXIO) }
        return found
    }
}
