/// A parsed, checksum-verified block (see `BlockBuilder` for the layout). Immutable, shared
/// between threads through the block cache.
package final class Block: Sendable {
    let data: [UInt8]
    let restartsOffset: Int
    let numRestarts: Int

    package init(_ data: [UInt8], path: String, offset: Int64) throws {
        guard data.count >= 4 else { throw SliceError.corruption("block too small", path: path, offset: offset) }
        let n = data.withUnsafeBytes { Int($0.fixed32(at: data.count - 4)) }
        guard n >= 1, n <= (data.count - 4) / 4 else {
            throw SliceError.corruption("bad restart count in block", path: path, offset: offset)
        }
        self.data = data
        self.numRestarts = n
        self.restartsOffset = data.count - 4 - 4 * n
    }

    /// Memory charged to the block cache.
    var charge: Int { data.count + 64 }

    package func makeIterator(path: String) -> BlockIterator { BlockIterator(self, path: path) }
}

/// Cursor over a `Block`. Keys are rebuilt into a reused buffer; values are slices of the
/// block (which never changes).
package final class BlockIterator: InternalIterator {
    let block: Block
    private let path: String
    private var current: Int  // offset of the current entry; == restartsOffset when invalid
    private var nextOffset: Int
    private(set) var key: [UInt8] = []
    private var valueRange: Range<Int> = 0..<0

    init(_ block: Block, path: String) {
        self.block = block
        self.path = path
        current = block.restartsOffset
        nextOffset = block.restartsOffset
    }

    package var isValid: Bool { current < block.restartsOffset }
    var value: ArraySlice<UInt8> { block.data[valueRange] }

    private func corrupt() -> SliceError {
        current = block.restartsOffset
        return SliceError.corruption("malformed block entry", path: path)
    }

    private func restartPoint(_ i: Int) -> Int {
        block.data.withUnsafeBytes { Int($0.fixed32(at: block.restartsOffset + 4 * i)) }
    }

    /// Decodes the entry at `nextOffset` into key/value. Returns false at the end.
    private func parseNext() throws -> Bool {
        current = nextOffset
        guard current < block.restartsOffset else { return false }
        return try block.data.withUnsafeBytes { buf in
            var p = current
            let limit = block.restartsOffset
            guard let shared = buf.varint(at: &p, limit: limit), let unshared = buf.varint(at: &p, limit: limit),
                let vlen = buf.varint(at: &p, limit: limit),
                Int(shared) <= key.count, UInt64(limit - p) >= unshared &+ vlen
            else { throw corrupt() }
            key.removeLast(key.count - Int(shared))
            key.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[p..<(p + Int(unshared))]))
            p += Int(unshared)
            valueRange = p..<(p + Int(vlen))
            nextOffset = p + Int(vlen)
            return true
        }
    }

    private func seekToRestart(_ i: Int) {
        key.removeAll(keepingCapacity: true)
        nextOffset = restartPoint(i)
    }

    func seekToFirst() throws {
        seekToRestart(0)
        _ = try parseNext()
    }

    func next() throws {
        precondition(isValid)
        _ = try parseNext()
    }

    func seekToLast() throws {
        seekToRestart(block.numRestarts - 1)
        while try parseNext() {
            if nextOffset >= block.restartsOffset { return }
        }
    }

    /// Entries store only a suffix of the previous key, so moving back means restarting at
    /// the last restart point before the current entry and decoding forward to just before it.
    func prev() throws {
        precondition(isValid)
        let original = current
        var lo = 0
        var hi = block.numRestarts - 1
        guard restartPoint(0) < original else {
            current = block.restartsOffset
            nextOffset = block.restartsOffset
            return
        }
        // Last restart point before `original`.
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if restartPoint(mid) < original { lo = mid } else { hi = mid - 1 }
        }
        seekToRestart(lo)
        repeat {
            guard try parseNext() else { throw corrupt() }
        } while nextOffset < original
    }

    /// Positions at the first entry whose internal key is >= `target`.
    package func seek(_ target: [UInt8]) throws {
        try seek(target, compare: compareInternalKeys)
    }

    /// Seek with a caller-chosen ordering (meta blocks use plain bytewise keys).
    func seek(_ target: [UInt8], compare: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Int) throws {
        // Binary search for the last restart point whose key is < target.
        var lo = 0
        var hi = block.numRestarts - 1
        try target.withUnsafeBytes { t in
            while lo < hi {
                let mid = (lo + hi + 1) / 2
                let off = restartPoint(mid)
                let less: Bool = try block.data.withUnsafeBytes { buf in
                    var p = off
                    guard let shared = buf.varint(at: &p), let unshared = buf.varint(at: &p), buf.varint(at: &p) != nil,
                        shared == 0, Int(unshared) <= block.restartsOffset - p
                    else { throw corrupt() }
                    return compare(UnsafeRawBufferPointer(rebasing: buf[p..<(p + Int(unshared))]), t) < 0
                }
                if less { lo = mid } else { hi = mid - 1 }
            }
        }
        seekToRestart(lo)
        while try parseNext() {
            let c = key.withUnsafeBytes { k in target.withUnsafeBytes { t in compare(k, t) } }
            if c >= 0 { return }
        }
    }
}
