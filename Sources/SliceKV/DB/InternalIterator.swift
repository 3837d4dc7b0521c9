/// An ordered cursor over internal keys (memtable, block, table, level, merge).
///
/// `keyBytes` and `valueBytes` point into memory the iterator keeps alive (a block, the
/// memtable arena, a reused key buffer) and are valid only until the next call that moves the
/// cursor or until the iterator is released: hot paths compare and copy from them without ARC
/// traffic or allocation. `key` and `value` are copying conveniences for everything else.
/// Movement throws when a block fails its checksum: corruption surfaces as an error, never as
/// data.
protocol InternalIterator: AnyObject {
    var isValid: Bool { get }
    /// REQUIRES: `isValid`.
    var keyBytes: UnsafeRawBufferPointer { get }
    /// REQUIRES: `isValid`.
    var valueBytes: UnsafeRawBufferPointer { get }
    func seekToFirst() throws
    func seek(_ target: [UInt8]) throws
    func next() throws
    /// Positions at the last entry (invalid when empty).
    func seekToLast() throws
    /// Moves to the entry before the current one (invalid before the first).
    func prev() throws
}

extension InternalIterator {
    /// A copy of the current internal key.
    var key: [UInt8] { Array(keyBytes) }
    /// A copy of the current value.
    var value: [UInt8] { Array(valueBytes) }
}

/// A growable byte buffer for a key rebuilt in place (prefix-compressed blocks, copied
/// memtable keys): its bytes stay put until the next `set`/`append`, so `bytes` can be handed
/// out as a raw view. Owned by one iterator; not thread-safe.
struct KeyBuffer: ~Copyable {
    private(set) var base: UnsafeMutableRawPointer
    private var capacity: Int
    private(set) var count = 0

    init(capacity: Int = 64) {
        self.capacity = capacity
        base = .allocate(byteCount: capacity, alignment: 8)
    }

    deinit { base.deallocate() }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    @inline(__always)
    private mutating func reserve(_ n: Int) {
        guard n > capacity else { return }
        let bigger = max(n, capacity * 2)
        let b = UnsafeMutableRawPointer.allocate(byteCount: bigger, alignment: 8)
        b.copyMemory(from: base, byteCount: count)
        base.deallocate()
        base = b
        capacity = bigger
    }

    /// Keeps the first `shared` bytes and appends `suffix`. REQUIRES: shared <= count.
    @inline(__always)
    mutating func replaceSuffix(keeping shared: Int, with suffix: UnsafeRawBufferPointer) {
        reserve(shared + suffix.count)
        if let s = suffix.baseAddress, suffix.count > 0 { (base + shared).copyMemory(from: s, byteCount: suffix.count) }
        count = shared + suffix.count
    }

    mutating func removeAll() { count = 0 }
}
