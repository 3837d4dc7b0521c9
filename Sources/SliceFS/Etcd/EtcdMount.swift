import SliceKV

#if canImport(Glibc)
    import Glibc
#endif

extension SliceFileSystem {
    /// A filesystem over the tree at `target` in an etcd cluster, shared with every other
    /// mount of it: the cluster answers (or the error says why not), the watch is running, and
    /// changes by other mounts drop what this one caches (`storeChangedElsewhere`).
    /// Call `closeSharedStore` after the session ends.
    public static func onEtcd(_ target: EtcdTarget, uid: UInt32 = getuid(), gid: UInt32 = getgid()) throws
        -> SliceFileSystem
    {
        let client = EtcdClient(endpoints: target.endpoints)
        let store = EtcdStore(client: client, layout: EtcdLayout(prefix: target.prefix), limits: target.limits)
        do {
            // Fails with the members' answers when none is reachable or none has a leader.
            try store.startWatching()
            let fs = try SliceFileSystem(
                store: store, control: store, db: nil, uid: uid, gid: gid, writeBack: false, controlFiles: true)
            store.remoteChange.withLock { $0 = { [weak fs] keys in fs?.storeChangedElsewhere(keys) } }
            return fs
        } catch {
            store.close()
            throw error
        }
    }

    /// Stops the watch and the client of a filesystem made by `onEtcd` (nothing for others).
    public func closeSharedStore() {
        (namespace.store as? EtcdStore)?.close()
    }
}
