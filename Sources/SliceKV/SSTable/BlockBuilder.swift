/// Builds one block of sorted entries with prefix-compressed keys (LevelDB's block format).
///
/// ```
/// block    := entry* restarts:fixed32[numRestarts] numRestarts:fixed32
/// entry    := shared:varint  unshared:varint  valueLen:varint  keyDelta[unshared]  value[valueLen]
/// ```
/// `shared` is how many leading bytes the key has in common with the previous key; it is 0 at
/// every restart point (every `restartInterval` entries), whose offsets are listed at the end so
/// a reader can binary-search them. Data blocks hold internal keys; index and meta blocks reuse
/// the same layout with their own keys. On disk, a block is followed by its trailer
/// (see `BlockHandle`).
package struct BlockBuilder {
    let restartInterval: Int
    private(set) var buffer: [UInt8] = []
    private var restarts: [UInt32] = [0]
    private var counter = 0
    private(set) var lastKey: [UInt8] = []
    private(set) var entries = 0

    package init(restartInterval: Int) {
        self.restartInterval = restartInterval
        buffer.reserveCapacity(8192)
    }

    var isEmpty: Bool { entries == 0 }

    /// Size of the finished block if it were finished now.
    var estimatedSize: Int { buffer.count + restarts.count * 4 + 4 }

    /// REQUIRES: `key` sorts after every key added so far.
    package mutating func add(_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) {
        var shared = 0
        if counter < restartInterval {
            let n = min(lastKey.count, key.count)
            lastKey.withUnsafeBytes { last in
                while shared < n && last[shared] == key[shared] { shared += 1 }
            }
        } else {
            restarts.append(UInt32(buffer.count))
            counter = 0
        }
        buffer.appendVarint(shared)
        buffer.appendVarint(key.count - shared)
        buffer.appendVarint(value.count)
        buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: key[shared...]))
        buffer.append(contentsOf: value)
        lastKey.removeLast(lastKey.count - shared)
        lastKey.append(contentsOf: UnsafeRawBufferPointer(rebasing: key[shared...]))
        counter += 1
        entries += 1
    }

    mutating func add(_ key: [UInt8], _ value: [UInt8]) {
        key.withUnsafeBytes { k in value.withUnsafeBytes { v in add(k, v) } }
    }

    /// Appends the restart array and returns the block contents; the builder is reset.
    package mutating func finish() -> [UInt8] {
        for r in restarts { buffer.appendFixed32(r) }
        buffer.appendFixed32(UInt32(restarts.count))
        let result = buffer
        buffer.removeAll(keepingCapacity: true)
        restarts = [0]
        counter = 0
        entries = 0
        lastKey.removeAll(keepingCapacity: true)
        return result
    }
}
