#if canImport(Glibc)
    import Glibc
#endif

/// A `FileLayer` for tests that does every call for real (through `PosixFileLayer`) and can
/// also make calls fail, delay them, tear writes and cut the power (Pebble's `errorfs`,
/// LevelDB's `FaultInjectionTestEnv`).
///
/// - **Counting**: every call is counted by kind (`count(of:)`), so a test can run a workload
///   once to learn how many calls of each kind it makes, then aim a fault at each in turn.
/// - **Faults** (`inject`): the Nth call of a kind (optionally only on paths containing a
///   string) and, if asked, the calls after it fail with an errno and change nothing; a torn
///   write lets half its bytes reach the file first; a power cut stops the disk at that call.
/// - **Delays**: with `delays`, calls sleep a random time first (shakes out timing bugs).
/// - **Power cut**: from the cut on (`cutPower()` or an injected `.powerCut`) every call fails
///   with `EIO` and changes nothing, as if the machine were gone. After the store is closed,
///   `reboot(unsynced:)` applies `PowerCutJournal`'s model to the real files — unsynced bytes
///   and unsynced directory entries are lost — and turns the power back on.
///
/// Thread-safety: one lock guards counters, rules and the journal; the real I/O runs outside it.
package final class FaultInjectingFileLayer: FileLayer, @unchecked Sendable {
    /// A fault aimed at calls of one kind.
    package struct Fault: Sendable {
        package enum Effect: Sendable {
            /// The call changes nothing and fails with this errno (`EIO`, `ENOSPC`, ...).
            case fail(Int32)
            /// Writes: half the bytes reach the file, then the call fails with this errno.
            /// Other calls: as `fail`.
            case tear(Int32)
            /// The power goes off just before this call: it and every later call fail.
            case powerCut
        }

        package var operation: FileOperation
        /// The first call it hits: the Nth matching call (1-based) since the fault was injected.
        package var occurrence: Int
        /// How many matching calls from there on it hits; nil for every one until `clearFaults`
        /// (a disk that stays full).
        package var repeats: Int?
        package var effect: Effect
        /// Only calls on paths containing this string match (nil: every call of the kind).
        package var pathContains: String?

        package init(
            _ operation: FileOperation, occurrence: Int, repeats: Int? = 1, effect: Effect,
            pathContains: String? = nil
        ) {
            self.operation = operation
            self.occurrence = occurrence
            self.repeats = repeats
            self.effect = effect
            self.pathContains = pathContains
        }
    }

    private struct Rule {
        var fault: Fault
        var seen = 0
    }

    private struct State {
        var counts: [FileOperation: Int] = [:]
        var rules: [Rule] = []
        var powerOff = false
        var injected = 0
        var delays: (probability: Double, maxMicroseconds: Int)?
        var rng = SplitMix(seed: 1)
    }

    private let posix = PosixFileLayer.shared
    private let state = Locked(State())
    /// Guarded by its own lock; taken after `state` is released, never inside it.
    private let journal = Locked(PowerCutJournal())

    package init() {}

    deinit { journal.withLock { $0.removeSavedFolders() } }

    // MARK: Control

    package func inject(_ fault: Fault) { state.withLock { $0.rules.append(Rule(fault: fault)) } }

    package func clearFaults() { state.withLock { $0.rules = [] } }

    /// Calls of `operation` made so far.
    package func count(of operation: FileOperation) -> Int { state.withLock { $0.counts[operation] ?? 0 } }

    /// Faults that actually hit a call.
    package var injectedCount: Int { state.withLock { $0.injected } }

    package var isPowerOff: Bool { state.withLock { $0.powerOff } }

    /// Random delays of up to `maxMicroseconds` before a `probability` share of the calls.
    package func setDelays(probability: Double, maxMicroseconds: Int, seed: UInt64) {
        state.withLock {
            $0.delays = (probability, maxMicroseconds)
            $0.rng = SplitMix(seed: seed)
        }
    }

    /// Cuts the power now: every later call fails and changes nothing.
    package func cutPower() { state.withLock { $0.powerOff = true } }

    /// Applies the power cut to the files on disk and turns the power back on, with no faults
    /// armed. REQUIRES: the store using this layer is closed (no mapping of its files is left:
    /// a copy into a mapped page past a cut-back end of file would raise SIGBUS).
    package func reboot(unsynced: PowerCutJournal.UnsyncedData = .lost) {
        journal.withLock { $0.applyPowerCut(unsynced: unsynced) }
        state.withLock {
            $0.powerOff = false
            $0.rules = []
        }
    }

    // MARK: The gate every call passes

    private enum Outcome {
        case proceed
        case tear(Int32)
    }

    /// Counts the call, sleeps if a delay is drawn, and throws if a fault or the power cut hits.
    private func enter(_ op: FileOperation, _ path: String) throws -> Outcome {
        var sleepMicros = 0
        let outcome: Result<Outcome, SliceError> = state.withLock { s in
            s.counts[op, default: 0] += 1
            if s.powerOff { return .failure(Self.error(op, path, EIO, "the power is off")) }
            if let d = s.delays, Double(s.rng.next() % 1_000_000) / 1_000_000 < d.probability {
                sleepMicros = Int(s.rng.next() % UInt64(max(1, d.maxMicroseconds)))
            }
            for i in s.rules.indices where s.rules[i].fault.operation == op {
                let f = s.rules[i].fault
                if let needle = f.pathContains, !path.contains(needle) { continue }
                s.rules[i].seen += 1
                let n = s.rules[i].seen
                guard n >= f.occurrence, f.repeats.map({ n < f.occurrence + $0 }) ?? true else { continue }
                s.injected += 1
                switch f.effect {
                case .fail(let e): return .failure(Self.error(op, path, e, "injected"))
                case .tear(let e): return .success(.tear(e))
                case .powerCut:
                    s.powerOff = true
                    return .failure(Self.error(op, path, EIO, "the power went off"))
                }
            }
            return .success(.proceed)
        }
        if sleepMicros > 0 { usleep(UInt32(sleepMicros)) }
        return try outcome.get()
    }

    private static func error(_ op: FileOperation, _ path: String, _ e: Int32, _ why: String) -> SliceError {
        SliceError.io("\(op) failed (\(why))", path: path, errno: e)
    }

    /// For calls where a torn write makes no sense: a tear is a failure.
    private func enterWhole(_ op: FileOperation, _ path: String) throws {
        if case .tear(let e) = try enter(op, path) { throw Self.error(op, path, e, "injected") }
    }

    // MARK: FileLayer

    package func open(_ path: String, flags: Int32, mode: mode_t) throws -> File {
        try enterWhole(.open, path)
        let existed = posix.exists(path)
        let fd = try posix.openDescriptor(path, flags: flags, mode: mode)
        let writable = flags & O_ACCMODE != O_RDONLY
        if writable || !existed {
            journal.withLock {
                $0.opened(path, created: !existed && flags & O_CREAT != 0, truncated: flags & O_TRUNC != 0)
            }
        }
        // Owned by this layer, so that every later call on it comes back here.
        return File(fd: fd, path: path, layer: self)
    }

    package func openTemporary(in directory: String) throws -> File {
        try enterWhole(.open, directory)
        return File(fd: try posix.temporaryDescriptor(in: directory), path: "\(directory)/(temporary)", layer: self)
    }

    package func close(fd: Int32, path: String) { posix.close(fd: fd, path: path) }

    package func read(_ file: File, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        try enterWhole(.read, file.path)
        return try posix.read(file, into: buffer, at: offset)
    }

    package func write(_ file: File, _ buffer: UnsafeRawBufferPointer, at offset: Int64?) throws -> Int {
        let outcome = try enter(.write, file.path)
        let position = offset ?? Int64(lseek(file.fd, 0, SEEK_CUR))
        var bytes = buffer
        if case .tear = outcome { bytes = UnsafeRawBufferPointer(rebasing: buffer.prefix(buffer.count / 2)) }
        journal.withLock { $0.willWrite(file.path, at: position, count: bytes.count) }
        var done = 0
        while done < bytes.count {
            done += try posix.write(file, UnsafeRawBufferPointer(rebasing: bytes[done...]), at: position + Int64(done))
        }
        if offset == nil { _ = lseek(file.fd, off_t(position + Int64(done)), SEEK_SET) }
        journal.withLock { $0.wrote(file.path, at: position, count: done) }
        if case .tear(let e) = outcome { throw Self.error(.write, file.path, e, "torn write") }
        return done
    }

    package func sync(_ file: File) throws {
        try enterWhole(.sync, file.path)
        try posix.sync(file)
        journal.withLock { $0.synced(file.path) }
    }

    package func truncate(_ file: File, to length: Int64) throws {
        try enterWhole(.truncate, file.path)
        try posix.truncate(file, to: length)
        journal.withLock { $0.truncated(file.path, to: length) }
    }

    package func allocate(_ file: File, offset: Int64, length: Int64) throws {
        try enterWhole(.allocate, file.path)
        try posix.allocate(file, offset: offset, length: length)
    }

    package func size(_ file: File) throws -> Int64 {
        try enterWhole(.stat, file.path)
        return try posix.size(file)
    }

    package func seek(_ file: File, to offset: Int64) throws {
        try enterWhole(.seek, file.path)
        try posix.seek(file, to: offset)
    }

    package func map(_ file: File, offset: Int64, length: Int, writable: Bool) throws -> UnsafeMutableRawPointer {
        try enterWhole(.map, file.path)
        return try posix.map(file, offset: offset, length: length, writable: writable)
    }

    package func didWriteMapped(_ file: File, offset: Int64, count: Int) {
        // After the power went off the copy reached no disk; the journal keeps the synced state.
        guard !isPowerOff else { return }
        journal.withLock { $0.wrote(file.path, at: offset, count: count) }
    }

    package func startWriteback(_ file: File, offset: Int64, count: Int64) {
        guard !isPowerOff else { return }
        posix.startWriteback(file, offset: offset, count: count)
    }

    package func lock(_ file: File, shared: Bool) throws {
        try enterWhole(.lock, file.path)
        try posix.lock(file, shared: shared)
    }

    package func unlock(_ file: File) { posix.unlock(file) }

    /// Not recorded by the power-cut journal (only snapshots' directories are removed).
    package func removeDirectory(_ path: String) throws {
        try enterWhole(.remove, path)
        try posix.removeDirectory(path)
    }

    package func createDirectory(_ path: String, mode: mode_t) throws {
        try enterWhole(.createDirectory, path)
        try posix.createDirectory(path, mode: mode)
    }

    package func contents(of directory: String) throws -> [String] {
        try enterWhole(.list, directory)
        return try posix.contents(of: directory).filter { $0 != PowerCutJournal.savedFolder }
    }

    package func remove(_ path: String) throws {
        try enterWhole(.remove, path)
        journal.withLock { $0.willRemove(path) }
        try posix.remove(path)
    }

    package func rename(_ from: String, to: String) throws {
        try enterWhole(.rename, from)
        journal.withLock { $0.willRename(from, to: to) }
        try posix.rename(from, to: to)
    }

    package func syncDirectory(_ path: String) throws {
        try enterWhole(.syncDirectory, path)
        try posix.syncDirectory(path)
        journal.withLock { $0.directorySynced(path) }
    }

    package func exists(_ path: String) -> Bool {
        (try? enterWhole(.stat, path)) != nil && posix.exists(path)
    }

    package func fileSize(_ path: String) -> Int64? {
        (try? enterWhole(.stat, path)) != nil ? posix.fileSize(path) : nil
    }
}
