/// An ordered cursor over internal keys (memtable, block, table, level, merge).
///
/// `key` and `value` are valid until the next call that moves the cursor. Movement throws when
/// a block fails its checksum: corruption surfaces as an error, never as data.
protocol InternalIterator: AnyObject {
    var isValid: Bool { get }
    var key: [UInt8] { get }
    var value: ArraySlice<UInt8> { get }
    func seekToFirst() throws
    func seek(_ target: [UInt8]) throws
    func next() throws
    /// Positions at the last entry (invalid when empty).
    func seekToLast() throws
    /// Moves to the entry before the current one (invalid before the first).
    func prev() throws
}
