/// Where an indirect entry's value lives: a chunked value (see `ChunkedValue`) under `prefix`
/// in `keyspace`, in the same store. It is the payload of a `.indirect` entry; every read of
/// the entry (get, ranged read, size, scan) reads the chunked value instead, at the same
/// sequence number as the entry, so a snapshot sees the bytes the chunks held when it was taken.
///
/// Encoding (the entry's value bytes; on disk: do not change):
/// ```
/// reference := version:uint8 (= 1)  keyspace:uint8  prefix:remaining bytes (at least 1)
/// ```
public struct IndirectReference: Sendable, Hashable {
    /// The encoding this code writes and reads (on disk: do not change).
    public static let version: UInt8 = 1

    /// The keyspace of the header and chunk keys.
    public var keyspace: Keyspace
    /// The header's key (chunk keys extend it); 1 to `Options.maxKeySize - 8` bytes, so that
    /// every chunk key is a valid key.
    public var prefix: [UInt8]

    public init(keyspace: Keyspace, prefix: [UInt8]) {
        self.keyspace = keyspace
        self.prefix = prefix
    }

    /// Longest prefix: the chunk keys append 8 bytes to it.
    static var maxPrefixSize: Int { Options.maxKeySize - 8 }

    public func encode() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(2 + prefix.count)
        out.append(IndirectReference.version)
        out.append(keyspace.rawValue)
        out.append(contentsOf: prefix)
        return out
    }

    /// nil when the bytes are not a reference this code can read.
    public init?(decoding bytes: some Collection<UInt8>) {
        let b = Array(bytes)
        guard b.count >= 3, b[0] == IndirectReference.version else { return nil }
        keyspace = Keyspace(rawValue: b[1])
        prefix = Array(b[2...])
    }
}
