import SliceKV

/// How the etcd backend lays a SliceFS tree out under one etcd key prefix, PREFIX (the path of
/// the mount URL, `etcd://host:port/PREFIX`).
///
/// ```
/// etcd key                                 value
/// PREFIX "/" path key                      `.user` keyspace: the path's content (below)
/// PREFIX 0x00 keyspace:uint8 key           every other keyspace of `FSLayout` (entries, inode
///                                          records, file chunks, meta), key and value as there
/// ```
/// So `etcdctl get --prefix PREFIX/` lists exactly the names a shell sees under the mount
/// (path keys as `PathMapping` writes them), and nothing else.
///
/// A `.user` value is the file's bytes as written through the key-value API, except:
/// ```
/// magic (16 bytes) 0x01 IndirectReference   a file written through a mount: its bytes are
///                                           the chunked value the reference names (64 KiB
///                                           chunks under PREFIX 0x00 0x15 ino, as in FSLayout)
/// magic (16 bytes) 0x00 bytes               an API value that itself begins with the magic
/// ```
/// Files are chunked because etcd bounds a request (1.5 MiB by default) and a value: a file
/// of any size is many small keys, and each commit through the mount writes the chunks it
/// changed with the file's header and record in one transaction.
/// On the cluster: do not change these bytes.
struct EtcdLayout: Sendable {
    static let magic: [UInt8] = [
        0, 0x53, 0x4C, 0x49, 0x43, 0x45, 0x2D, 0x46, 0x53, 0, 0xE2, 0x86, 0x92, 0x69, 0x6E, 0x64,
    ]
    static let indirectTag: UInt8 = 1
    static let escapedTag: UInt8 = 0

    /// PREFIX, without a trailing slash.
    let prefix: [UInt8]

    init(prefix: String) {
        var p = Array(prefix.utf8)
        while p.last == UInt8(ascii: "/") { p.removeLast() }
        self.prefix = p
    }

    /// The etcd key of `key` in `keyspace`.
    func etcdKey(_ keyspace: Keyspace, _ key: some Collection<UInt8>) -> [UInt8] {
        var k = prefix
        k.reserveCapacity(prefix.count + 2 + key.count)
        if keyspace == .user {
            k.append(UInt8(ascii: "/"))
        } else {
            k.append(0)
            k.append(keyspace.rawValue)
        }
        k.append(contentsOf: key)
        return k
    }

    /// The etcd key just past every key of `keyspace` (a range end).
    func keyspaceEnd(_ keyspace: Keyspace) -> [UInt8] {
        var k = prefix
        if keyspace == .user {
            k.append(UInt8(ascii: "/") + 1)
        } else {
            k.append(0)
            k.append(keyspace.rawValue &+ 1)
            if keyspace.rawValue == 0xFF { k = prefix + [1] }
        }
        return k
    }

    /// The keyspace and key of an etcd key of this layout (nil: outside it).
    func decode(_ etcdKey: [UInt8]) -> (Keyspace, [UInt8])? {
        guard etcdKey.count > prefix.count, etcdKey.starts(with: prefix) else { return nil }
        let tag = etcdKey[prefix.count]
        if tag == UInt8(ascii: "/") { return (.user, Array(etcdKey[(prefix.count + 1)...])) }
        guard tag == 0, etcdKey.count > prefix.count + 1 else { return nil }
        return (Keyspace(rawValue: etcdKey[prefix.count + 1]), Array(etcdKey[(prefix.count + 2)...]))
    }

    /// The watched range: `[PREFIX 0x00, PREFIX "0")` holds both parts (and keys of other
    /// prefixes that start with PREFIX and a byte below "0", which `decode` drops).
    var watchRange: (start: [UInt8], end: [UInt8]) { (prefix + [0], prefix + [UInt8(ascii: "/") + 1]) }

    /// What a `.user` value stored in etcd holds.
    enum UserValue {
        case bytes(ArraySlice<UInt8>)
        case indirect(IndirectReference)
    }

    static func encodeBytes(_ value: UnsafeRawBufferPointer) -> [UInt8] {
        guard value.starts(with: magic) else { return Array(value) }
        return magic + [escapedTag] + Array(value)
    }

    static func encodeIndirect(_ reference: IndirectReference) -> [UInt8] {
        magic + [indirectTag] + reference.encode()
    }

    static func decodeUser(_ stored: [UInt8]) throws -> UserValue {
        guard stored.starts(with: magic), stored.count > magic.count else { return .bytes(stored[...]) }
        switch stored[magic.count] {
        case escapedTag: return .bytes(stored[(magic.count + 1)...])
        case indirectTag:
            guard let r = IndirectReference(decoding: stored[(magic.count + 1)...]) else {
                throw SliceError(.corruption, "etcd: unreadable indirect entry")
            }
            return .indirect(r)
        default: throw SliceError(.corruption, "etcd: unknown value tag \(stored[magic.count])")
        }
    }
}
