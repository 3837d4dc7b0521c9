import ArgumentParser
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Test support for the kill loop through a mount: writes files under a mounted store from
/// several threads until killed, reporting each operation like `crash-writer` (see
/// `CrashLedger`). Each thread owns its own names, `t<thread>-k<n>`.
///
/// Acknowledged means: a write after `fsync` returned (the mount commits the file and syncs the
/// WAL before answering it); an unlink or rename when the call returned (the mount applies it
/// to the store before answering). A value in the report is a token that `content(_:)` expands.
struct CrashFileWriter: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crash-file-writer",
        abstract: "Test support: write files through a mount until killed, reporting acknowledgements.",
        shouldDisplay: false)

    @Argument var mountpoint: String
    @Option var threads: Int = 3
    @Option var keys: Int = 150
    @Option var seed: UInt64 = 1
    /// Largest file: from 4 KiB up, a mount keeps file content in blob files.
    @Option(name: .customLong("max-size")) var maxSize: Int = 12_000

    func run() throws {
        let group = DispatchGroup()
        for t in 0..<threads {
            let (seed, keys, maxSize, mnt) = (self.seed, self.keys, self.maxSize, mountpoint)
            group.enter()
            Thread {
                var rng = seed &* 6_364_136_223_846_793_005 &+ UInt64(t + 1) &* 1_442_695_040_888_963_407
                var mine: [String: String] = [:]  // files written and acknowledged by this process
                var n = 0
                while true {
                    rng = rng &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                    n += 1
                    let name = "t\(t)-k\((rng >> 33) % UInt64(keys))"
                    let dice = (rng >> 20) % 20
                    if dice < 2 {
                        emit("B \(t) D \(name)\n")
                        guard unlink("\(mnt)/\(name)") == 0 || errno == ENOENT else { fail(t, "unlink \(name)") }
                        mine[name] = nil
                    } else if dice < 4, case let names = mine.keys.filter({ $0 != name }).sorted(), !names.isEmpty {
                        let from = names[Int((rng >> 8) % UInt64(names.count))]
                        let token = mine[from]!
                        emit("B \(t) M \(from) \(name) \(token)\n")
                        guard rename("\(mnt)/\(from)", "\(mnt)/\(name)") == 0 else { fail(t, "rename \(from)") }
                        mine[from] = nil
                        mine[name] = token
                    } else {
                        let token = "v\(t)-\(n)-\(Int((rng >> 40) % UInt64(maxSize + 1)))"
                        emit("B \(t) P \(name) \(token)\n")
                        writeSynced("\(mnt)/\(name)", CrashFileWriter.content(token), thread: t)
                        mine[name] = token
                        emit("A \(t)\n")
                        continue
                    }
                    emit("A \(t)\n")
                    // Now and then a flush or a compaction, so kills land in those too.
                    if t == 0 && n % 40 == 0 {
                        let control = n % 200 == 0 ? ".compact" : ".flush"
                        let fd = open("\(mnt)/\(control)", O_WRONLY)
                        if fd < 0 || write(fd, "x", 1) != 1 { fail(t, control) }
                        close(fd)
                    }
                }
            }.start()
        }
        group.wait()
    }

    /// The bytes a token names: `v<thread>-<n>-<size>` is `size` bytes that begin with the
    /// token and go on with a repeating pattern; `<token>@<L>` is the first L of them.
    static func content(_ descriptor: String) -> [UInt8] {
        let parts = descriptor.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false)
        let token = String(parts[0])
        let size = token.split(separator: "-").last.flatMap { Int($0) } ?? 0
        var out = Array((token + "|").utf8)
        let pattern = Array("abcdefghijklmnopqrstuvwxyz0123456789\n".utf8)
        while out.count < size { out.append(pattern[out.count % pattern.count]) }
        out.removeLast(max(0, out.count - size))
        if parts.count == 2, let prefix = Int(parts[1]) { out.removeLast(max(0, out.count - prefix)) }
        return out
    }
}

/// Creates or truncates the file, writes `bytes` in two pieces (so a kill may fall between
/// them), and returns once `fsync` did.
private func writeSynced(_ path: String, _ bytes: [UInt8], thread: Int) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    if fd < 0 { fail(thread, "open \(path)") }
    let half = bytes.count / 2
    for range in [0..<half, half..<bytes.count] where !range.isEmpty {
        // A short write is legal (a daemon killed between the pieces of a large write answers
        // the first and aborts the rest): write the remainder, which then fails with the
        // connection's errno, as any careful writer would.
        var done = range.lowerBound
        while done < range.upperBound {
            let n = bytes[done..<range.upperBound].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n <= 0 { fail(thread, "write \(path)") }
            done += n
        }
    }
    if fsync(fd) != 0 { fail(thread, "fsync \(path)") }
    close(fd)
}

/// Reports a failed call (`E <thread> <what>: <error>`) and stops the process: once the mount's
/// daemon is killed every call fails, and the kill loop tells that apart from a real failure.
private func fail(_ thread: Int, _ what: String) -> Never {
    emit("E \(thread) \(what): \(String(cString: strerror(errno)))\n")
    exit(3)
}

/// One `write(2)` per line, so lines from different threads never interleave.
private func emit(_ line: String) {
    Terminal.writeStdout(Array(line.utf8))
}
