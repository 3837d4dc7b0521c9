/// The sequence numbers readers hold snapshots at, as a flush or compaction saw them when it
/// started: what decides whether a version of a key that a newer one hides must be kept.
///
/// A reader at snapshot `S` sees, of each key, the newest version with sequence `<= S`. So a
/// version written at `a` and hidden by the next newer version of its key, written at `b`, is
/// seen exactly by the snapshots in `a..<b` (RocksDB's snapshot "stripes"); with none there,
/// no reader can ever see it and it goes. Why not only the oldest snapshot (LevelDB's rule,
/// which keeps every version newer than it): one long-held snapshot would then keep every
/// value overwritten after it, and with it every byte of blob garbage.
///
/// Snapshots taken after the list was made are at or past every sequence the flush or
/// compaction reads, so they see only the newest versions, which are always kept.
struct SnapshotList: Sendable {
    /// Ascending, without duplicates.
    let sequences: [SequenceNumber]

    init(_ sequences: some Sequence<SequenceNumber>) { self.sequences = Set(sequences).sorted() }

    /// Whether some snapshot sees the version written at `sequence`, which the version written
    /// at `newer` (> `sequence`) hides.
    func anySees(_ sequence: SequenceNumber, hiddenAt newer: SequenceNumber) -> Bool {
        // The first snapshot at or after `sequence`.
        var lo = 0
        var hi = sequences.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if sequences[mid] < sequence { lo = mid + 1 } else { hi = mid }
        }
        return lo < sequences.count && sequences[lo] < newer
    }
}
