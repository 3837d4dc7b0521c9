import Foundation
import SliceKV

/// With the `writeback` mount option (off by default, as JuiceFS's `--writeback`): files
/// closed again soon after their last commit, whose commit is put off for a moment so
/// that a burst of closes costs one: a log appended to by `echo line >> log` 2,000 times, a
/// file rewritten in a loop. Without it each close rewrites the file's last chunk (up to
/// 64 KiB per appended line).
///
/// A file is held back (`hold`) at FLUSH or RELEASE when it was committed within the last
/// one or two `window`s, buffers little (`maxDirtyBytes`) and there is room (`maxFiles`); a
/// thread commits every held file once per `window`. Until then the file stays in
/// `OpenFileTable` (reads, stats, reopens and hard links see its bytes, size and mtime as
/// written), and `fsync`, `.sync`, `.flush`, a truncate and unmount commit it at once. The cost, as with a page
/// cache's write-back: a crash may lose up to one `window` of such closes (never what an
/// fsync acknowledged), and a commit error is logged instead of returned by `close`.
///
/// Locking: `state` alone (a pthread mutex, `Locked`, so ThreadSanitizer sees it); commits
/// run with no lock of this type held.
final class WriteBack: Sendable {
    static let window = 1.0
    /// Off (the default mount): `hold` refuses, every close commits.
    let enabled: Bool

    init(enabled: Bool) { self.enabled = enabled }
    static let maxFiles = 256
    static let maxDirtyBytes = 4 * FileContent.chunkSize

    private struct State {
        var held: [InodeNumber: OpenFile] = [:]
        /// Inodes committed since `rotated` and in the window before it: `isHot` asks both,
        /// and every `window` the older map is dropped, so the maps hold at most two
        /// windows' commits and no commit scans them.
        var recent: Set<InodeNumber> = []
        var older: Set<InodeNumber> = []
        var rotated: UInt64 = 0
        var running = false
        var stopping = false

        mutating func rotate(_ now: UInt64) {
            guard now &- rotated >= WriteBack.windowNanos else { return }
            // Two windows or more since: nothing recent is left either.
            older = now &- rotated >= 2 * WriteBack.windowNanos ? [] : recent
            recent = []
            rotated = now
        }
    }

    private let state = Locked(State())

    static func monotonicNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    private static let windowNanos = UInt64(window * 1e9)

    /// Notes a commit of `ino` now.
    func committed(_ ino: InodeNumber) {
        guard enabled else { return }
        let now = WriteBack.monotonicNanos()
        state.withLock { s in
            s.rotate(now)
            s.recent.insert(ino)
        }
    }

    /// Whether `ino` was committed lately: within one window at least, two at most.
    func isHot(_ ino: InodeNumber) -> Bool {
        guard enabled else { return false }
        let now = WriteBack.monotonicNanos()
        return state.withLock { s in
            s.rotate(now)
            return s.recent.contains(ino) || s.older.contains(ino)
        }
    }

    /// Holds `f` back for the thread; false when full or stopping (then commit now).
    /// `commit` is what the thread calls for each held file, on its own thread.
    func hold(_ f: OpenFile, commit: @escaping @Sendable (OpenFile) -> Void) -> Bool {
        guard enabled else { return false }
        let start = state.withLock { s -> Bool? in
            if s.stopping || (s.held[f.ino] == nil && s.held.count >= WriteBack.maxFiles) { return nil }
            s.held[f.ino] = f
            defer { s.running = true }
            return !s.running
        }
        guard let start else { return false }
        if start {
            let t = Thread { [self] in run(commit) }
            t.name = "slice-writeback"
            t.start()
        }
        return true
    }

    /// Files held back now.
    var count: Int { state.withLock { $0.held.count } }

    /// Takes every held file (to commit now, as unmount and `.sync` do).
    func takeAll() -> [OpenFile] {
        state.withLock { s in
            defer { s.held = [:] }
            return Array(s.held.values)
        }
    }

    /// Stops taking files; the thread ends after its next pass.
    func stop() { state.withLock { $0.stopping = true } }

    private func run(_ commit: @Sendable (OpenFile) -> Void) {
        while true {
            Thread.sleep(forTimeInterval: WriteBack.window)
            let (files, stop) = state.withLock { s -> ([OpenFile], Bool) in
                let files = Array(s.held.values)
                s.held = [:]
                let stop = s.stopping || files.isEmpty
                if stop { s.running = false }
                return (files, stop)
            }
            for f in files { commit(f) }
            if stop { return }
        }
    }
}
