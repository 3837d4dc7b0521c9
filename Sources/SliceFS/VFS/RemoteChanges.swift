import SliceKV

/// Changes another mount made to a shared store (`EtcdStore`'s watch): what this mount and
/// its kernel cached of them is dropped.
///
/// The namespace's kept lookups go by themselves (the store's `changeCount` moved); here the
/// cached nodes go (all of them: a remote rename moves keys under names this mount still
/// holds), and the kernel is told of each inode whose record or bytes changed and of each name
/// made or removed in a directory it knows, so the next `stat`, `open` or `ls` asks again at
/// once instead of after the attribute and entry timeouts.
extension SliceFileSystem {
    /// `keys`: the keys changed (nil: anything may have changed, such as after a watch lost
    /// its place in the cluster's history).
    func storeChangedElsewhere(_ keys: [(Keyspace, [UInt8])]?) {
        inodes.invalidateAll()
        guard let keys else {
            // Anything may have changed: every open file is checked, the kernel starts over at
            // the root (entries and attributes it holds expire within the timeout).
            notifier?.invalidateInode(InodeNumbers.root)
            for f in openFiles.all {
                notifier?.invalidateInode(f.ino)
                openFileChangedElsewhere(f.ino)
            }
            return
        }
        var changedInodes = Set<InodeNumber>()
        var names: [(parent: [UInt8], name: [UInt8])] = []
        for (keyspace, key) in keys {
            switch keyspace {
            case FSKeyspace.inodes, FSKeyspace.chunks:
                if key.count >= 8, let ino = FSKeyspace.decodeInode(key.prefix(8)) { changedInodes.insert(ino) }
            case .user, FSKeyspace.entries:
                let path = PathMapping.path(forKey: key)
                guard let slash = path.lastIndex(of: UInt8(ascii: "/")) else { continue }
                let parent = slash == path.startIndex ? InodeTable.rootPath : Array(path[..<slash])
                names.append((parent, Array(path[(slash + 1)...])))
            default: break
            }
        }
        for ino in changedInodes {
            notifier?.invalidateInode(ino)
            openFileChangedElsewhere(ino)
        }
        guard let notifier, !names.isEmpty else { return }
        let parents = inodes.inodes(atPaths: Set(names.map(\.parent)))
        for (parent, name) in names {
            if let p = parents[parent] { notifier.invalidateEntry(p, name) }
        }
    }

    /// A file open here that another mount changed: without uncommitted writes here, its size
    /// is read again at the next use; if its record is gone (its last name went elsewhere and
    /// that mount freed it), its handles answer ESTALE from now on instead of reading holes.
    private func openFileChangedElsewhere(_ ino: InodeNumber) {
        guard let f = openFiles.file(ino) else { return }
        var gone = false
        do { gone = try namespace.record(ino) == nil } catch {}  // unknown: leave the handles be
        f.state.withLock { s in
            if s.isClean { s.size = nil }
            if gone { s.freedElsewhere = true }
        }
    }
}
