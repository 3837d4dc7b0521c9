/// A parsed, checksum-verified block (see `BlockBuilder` for the layout). Immutable, shared
/// between threads through the block cache.
///
/// The bytes live either in a heap copy the block owns or inside a table file's read-only
/// mapping (`owner` keeps the mapping alive as long as the block is referenced): either way,
/// iterators hand out views into them without copying.
package final class Block: @unchecked Sendable {
    let bytes: UnsafeRawBufferPointer
    /// Keeps the mapping alive; nil when the block owns a heap copy of its bytes.
    private let owner: AnyObject?
    let restartsOffset: Int
    let numRestarts: Int

    /// A block over a heap copy of `data`.
    package convenience init(_ data: [UInt8], path: String, offset: Int64) throws {
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(data.count, 1), alignment: 8)
        data.withUnsafeBytes {
            if let b = $0.baseAddress { copy.baseAddress!.copyMemory(from: b, byteCount: $0.count) }
        }
        do {
            try self.init(
                bytes: UnsafeRawBufferPointer(rebasing: copy[0..<data.count]), owner: nil, path: path, offset: offset)
        } catch {
            copy.deallocate()
            throw error
        }
    }

    /// A block over bytes kept alive by `owner` (nil: the block owns and frees them; they must
    /// come from `UnsafeMutableRawBufferPointer.allocate`).
    init(bytes: UnsafeRawBufferPointer, owner: AnyObject?, path: String, offset: Int64) throws {
        guard bytes.count >= 4 else { throw SliceError.corruption("block too small", path: path, offset: offset) }
        let n = Int(bytes.fixed32(at: bytes.count - 4))
        guard n >= 1, n <= (bytes.count - 4) / 4 else {
            throw SliceError.corruption("bad restart count in block", path: path, offset: offset)
        }
        self.bytes = bytes
        self.owner = owner
        self.numRestarts = n
        self.restartsOffset = bytes.count - 4 - 4 * n
    }

    deinit {
        if owner == nil { UnsafeMutableRawPointer(mutating: bytes.baseAddress)?.deallocate() }
    }

    /// Memory charged to the block cache.
    var charge: Int { bytes.count + 64 }

    package func makeIterator(path: String) -> BlockIterator { BlockIterator(self, path: path) }

    @inline(__always)
    func restartPoint(_ i: Int) -> Int { Int(bytes.fixed32(at: restartsOffset + 4 * i)) }

    /// Point lookup without an iterator: finds the first entry whose key is >= `target` and
    /// calls `body` with its key and value (nil when every key is smaller). Used by gets, where
    /// an iterator object and its key buffer per probed table measured as a fifth of the time.
    /// Keys are rebuilt on the stack; a key too long for it falls back to an iterator.
    func find<R>(
        _ target: UnsafeRawBufferPointer, path: String,
        _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> R
    ) throws -> R? {
        let lo = try lastRestart(before: target, compare: compareInternalKeys, path: path)
        let stackBytes = 512
        let found: R?? = try withUnsafeTemporaryAllocation(byteCount: stackBytes, alignment: 8) { scratch in
            var p = restartPoint(lo)
            var keyCount = 0
            while p < restartsOffset {
                guard let shared = bytes.varint(at: &p, limit: restartsOffset),
                    let unshared = bytes.varint(at: &p, limit: restartsOffset),
                    let vlen = bytes.varint(at: &p, limit: restartsOffset), Int(shared) <= keyCount,
                    UInt64(restartsOffset - p) >= unshared &+ vlen
                else { throw SliceError.corruption("malformed block entry", path: path) }
                let n = Int(shared) + Int(unshared)
                if n > stackBytes { return .none }  // too long for the stack: use an iterator
                if unshared > 0 {
                    (scratch.baseAddress! + Int(shared)).copyMemory(
                        from: bytes.baseAddress! + p, byteCount: Int(unshared))
                }
                keyCount = n
                p += Int(unshared)
                let key = UnsafeRawBufferPointer(rebasing: scratch[0..<keyCount])
                if compareInternalKeys(key, target) >= 0 {
                    return .some(try body(key, UnsafeRawBufferPointer(rebasing: bytes[p..<(p + Int(vlen))])))
                }
                p += Int(vlen)
            }
            return .some(nil)
        }
        if let found { return found }
        let it = makeIterator(path: path)
        try it.seek(Array(target))
        return it.isValid ? try body(it.keyBytes, it.valueBytes) : nil
    }

    /// Binary search for the last restart point whose key is < target (0 if none).
    @inline(__always)
    func lastRestart(
        before target: UnsafeRawBufferPointer, compare: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Int,
        path: String
    ) throws -> Int {
        var lo = 0
        var hi = numRestarts - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            var p = restartPoint(mid)
            guard let shared = bytes.varint(at: &p, limit: restartsOffset),
                let unshared = bytes.varint(at: &p, limit: restartsOffset),
                bytes.varint(at: &p, limit: restartsOffset) != nil,
                shared == 0, Int(unshared) <= restartsOffset - p
            else { throw SliceError.corruption("malformed block entry", path: path) }
            if compare(UnsafeRawBufferPointer(rebasing: bytes[p..<(p + Int(unshared))]), target) < 0 {
                lo = mid
            } else {
                hi = mid - 1
            }
        }
        return lo
    }
}

/// Cursor over a `Block`. Keys are rebuilt into a reused buffer; values are views of the
/// block (which never changes).
///
/// Like every iterator here, used by one thread at a time and never reentrantly, so its state
/// opts out of dynamic exclusivity checks (`@exclusivity(unchecked)`): they measured as a
/// sixth of a sequential scan.
package final class BlockIterator: InternalIterator {
    @exclusivity(unchecked) private(set) var block: Block
    private let path: String
    @exclusivity(unchecked) private var current: Int  // offset of the current entry; == restartsOffset when invalid
    @exclusivity(unchecked) private var nextOffset: Int
    @exclusivity(unchecked) private var keyBuffer = KeyBuffer()
    @exclusivity(unchecked) private var valueRange: Range<Int> = 0..<0

    init(_ block: Block, path: String) {
        self.block = block
        self.path = path
        current = block.restartsOffset
        nextOffset = block.restartsOffset
    }

    /// Points the iterator at another block (unpositioned), reusing its key buffer.
    func reset(_ block: Block) {
        self.block = block
        current = block.restartsOffset
        nextOffset = block.restartsOffset
        keyBuffer.removeAll()
    }

    package var isValid: Bool { current < block.restartsOffset }
    var keyBytes: UnsafeRawBufferPointer { keyBuffer.bytes }
    var valueBytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: block.bytes[valueRange]) }

    private func corrupt() -> SliceError {
        current = block.restartsOffset
        return SliceError.corruption("malformed block entry", path: path)
    }

    /// Decodes the entry at `nextOffset` into key/value. Returns false at the end.
    @inline(__always)
    private func parseNext() throws -> Bool {
        current = nextOffset
        let limit = block.restartsOffset
        guard current < limit else { return false }
        let buf = block.bytes
        var p = current
        guard let shared = buf.varint(at: &p, limit: limit), let unshared = buf.varint(at: &p, limit: limit),
            let vlen = buf.varint(at: &p, limit: limit),
            Int(shared) <= keyBuffer.count, UInt64(limit - p) >= unshared &+ vlen
        else { throw corrupt() }
        keyBuffer.replaceSuffix(
            keeping: Int(shared), with: UnsafeRawBufferPointer(rebasing: buf[p..<(p + Int(unshared))]))
        p += Int(unshared)
        valueRange = p..<(p + Int(vlen))
        nextOffset = p + Int(vlen)
        return true
    }

    private func seekToRestart(_ i: Int) {
        keyBuffer.removeAll()
        nextOffset = block.restartPoint(i)
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
        guard block.restartPoint(0) < original else {
            current = block.restartsOffset
            nextOffset = block.restartsOffset
            return
        }
        // Last restart point before `original`.
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if block.restartPoint(mid) < original { lo = mid } else { hi = mid - 1 }
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
        try target.withUnsafeBytes { t in
            let lo: Int
            do {
                lo = try block.lastRestart(before: t, compare: compare, path: path)
            } catch {
                current = block.restartsOffset
                throw error
            }
            seekToRestart(lo)
            while try parseNext() {
                if compare(keyBuffer.bytes, t) >= 0 { return }
            }
        }
    }
}
