#if canImport(Glibc)
    import Glibc
#endif

/// What a mount asks of its store besides keys (`FileStore`): limits, the control files'
/// statistics and actions, and room. `SliceStore` answers for an embedded SliceKV store,
/// `EtcdStore` for a cluster.
protocol StoreControl: Sendable {
    /// The largest value (a file past it answers EFBIG).
    var maxValueSize: Int { get }
    var isReadOnly: Bool { get }
    /// Every write is synced before it returns (then no close is held back by write-back).
    var syncsEveryWrite: Bool { get }
    /// Bytes of the store's space reserve given up on a full disk (which only deletions may
    /// use), 0 when it has none.
    var spaceReserveShortfall: Int { get }
    /// The directory whose filesystem holds the data, checked for room before writes are
    /// buffered (nil: the data is elsewhere, the store reports a full cluster itself).
    var localDirectory: String? { get }
    /// `.stats`: Prometheus text.
    func statsText() -> String
    /// `.stats.json`: one JSON object.
    func statsJSON() -> String
    /// `.flush`, `.compact` and `.sync`.
    func flush() throws
    func compact() throws
    func sync() throws
    /// Sizes and counts for `statfs` (`df`).
    func statfs(_ st: UnsafeMutablePointer<statvfs>) throws
}
