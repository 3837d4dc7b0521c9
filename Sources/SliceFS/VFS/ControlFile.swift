import Foundation
import SliceKV

/// The control files at the root of a mount (JuiceFS-style): reserved names resolved before
/// the store is asked, opened with `direct_io` because their size is not known in advance.
///
/// | name          | mode | read                                    | write (anything)                   |
/// |---------------|------|-----------------------------------------|------------------------------------|
/// | `.stats`      | 0444 | Prometheus text, snapshot taken at open | EACCES                             |
/// | `.stats.json` | 0444 | the same as JSON                        | EACCES                             |
/// | `.flush`      | 0600 | result of the last flush                | flush memtables; returns when done |
/// | `.compact`    | 0600 | result of the last compaction           | full compaction; returns when done |
/// | `.sync`       | 0600 | result of the last sync                 | sync the WAL                       |
///
/// The files that act belong to the mounting user, and only that user (and root) may open them
/// for writing, whatever the mount options: on a shared mount anyone could otherwise start a
/// full compaction or a stream of syncs. A failed action makes the write fail with EIO; its
/// message is what the file reads next.
final class ControlFile: @unchecked Sendable {
    enum Kind: String, CaseIterable {
        case stats = ".stats"
        case statsJSON = ".stats.json"
        case flush = ".flush"
        case compact = ".compact"
        case sync = ".sync"

        var isWritable: Bool { self == .flush || self == .compact || self == .sync }

        /// Permission bits, owned by the mounting user.
        var mode: UInt32 { isWritable ? 0o600 : 0o444 }
    }

    let kind: Kind
    /// What a read of this handle returns, fixed at open.
    let content: [UInt8]

    init(kind: Kind, content: [UInt8]) {
        self.kind = kind
        self.content = content
    }
}

/// Last results of the writable control files, shown when they are read.
final class ControlResults: Sendable {
    private let results = Locked<[ControlFile.Kind: String]>([:])

    func set(_ kind: ControlFile.Kind, _ text: String) { results.withLock { $0[kind] = text } }

    func get(_ kind: ControlFile.Kind) -> String { results.withLock { $0[kind] } ?? "never run\n" }
}
