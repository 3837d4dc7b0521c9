import Foundation
import Linearizability
import Testing

@testable import SliceKV

/// Several processes (`slice history-client --files`) use one mount at once, a file per key:
/// a put renames a freshly written private file over the key's, a get reads the whole file, a
/// delete unlinks it. Their merged history (CLOCK_MONOTONIC is one clock for every process on
/// the machine) must be linearizable, across an unmount and a mount in the middle too.
///
/// Known issue: an open(2) racing a rename over the same name fails now and then with ESTALE
/// (libfuse's high-level API forgets the replaced node, and the kernel's one retry of the
/// lookup can lose the race again). Such a get is a failed call: its outcome is unknown, which
/// constrains nothing, and the failure is reported as a known issue.
@Suite(.serialized) struct MountLinearizabilityTests {
    /// Starts `slice history-client --files` on the mount; its log goes to a file.
    static func startClients(_ m: MountedStore, client: Int, ops: Int) throws -> (Process, String) {
        let output = m.root + "/history-\(client).txt"
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: sliceExecutable)
        process.arguments = [
            "history-client", m.mnt, "--files", "--threads", "2", "--ops", "\(ops)", "--client", "\(client)",
            "--seed", "\(client + 1)",
        ]
        process.standardOutput = FileHandle(forWritingAtPath: output)
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        return (process, output)
    }

    static func isStale(_ error: String) -> Bool { error.hasSuffix("Stale file handle") }

    static func check(_ history: [OperationRecord], stale: [String], _ label: String) {
        let verdict = HistoryVerdict(history)
        #expect(verdict.linearizability.isLinearizable, "\(verdict.linearizability)")
        #expect(verdict.sessionViolations.isEmpty, "\(verdict.sessionViolations.prefix(5))")
        print("\(label): \(verdict), \(stale.count) ESTALE")
        withKnownIssue("open(2) racing a rename over the same name fails with ESTALE", isIntermittent: true) {
            #expect(stale.isEmpty, "\(stale.count) gets failed with ESTALE: \(stale.prefix(3))")
        }
    }

    /// 4 processes x 2 threads x 150 calls, twice, with an unmount and a mount between.
    @Test func processesThroughTheMountAcrossARemount() throws {
        let m = try MountedStore()
        var history: [OperationRecord] = []
        var stale: [String] = []
        for round in 0..<2 {
            let clients = try (0..<4).map { try Self.startClients(m, client: round * 100 + $0 * 10, ops: 150) }
            for (process, output) in clients {
                process.waitUntilExit()
                let log = HistoryLog(try String(contentsOfFile: output, encoding: .utf8), deadline: nil)
                #expect(process.terminationStatus == (log.errors.isEmpty ? 0 : 3), "see \(output)")
                let unexpected = log.errors.filter { !Self.isStale($0) }
                #expect(unexpected.isEmpty, "\(unexpected.prefix(3))")
                stale += log.errors.filter(Self.isStale)
                #expect(log.completed + log.errors.count == 300)
                history += log.operations
            }
            // A clean restart of the mount between the rounds: the second reads what the first wrote.
            try m.unmount()
            try m.mount()
        }
        Self.check(history, stale: stale, "processes through the mount")
    }

    /// The mount's daemon is SIGKILLed while 3 client processes use it, then the store is
    /// mounted again (recovering it); twice, then this process reads every key. A call in
    /// flight at the kill took effect before it or never; every rename and unlink that returned
    /// must still be there.
    @Test func processesThroughTheMountAcrossDaemonKills() throws {
        let m = try MountedStore()
        var history: [OperationRecord] = []
        var stale: [String] = []
        var rng = SeededRandom(seed: 3)
        var cut = 0
        for round in 0..<2 {
            let clients = try (0..<3).map { try Self.startClients(m, client: round * 100 + $0 * 10, ops: 0) }
            let started = ContinuousClock.now
            for (_, output) in clients {
                while (try? String(contentsOfFile: output, encoding: .utf8))?.contains("\nR ") != true
                    && ContinuousClock.now - started < .seconds(30)
                {
                    usleep(10_000)
                }
            }
            usleep(UInt32(150_000 + Int.random(in: 0..<300_000, using: &rng)))
            let pid = try #require(m.daemonPID(), "no daemon found")
            kill(pid, SIGKILL)
            let killed = MonotonicClock.now()
            for (process, output) in clients {
                // Every client stops at its first ENOTCONN.
                process.waitUntilExit()
                let log = HistoryLog(try String(contentsOfFile: output, encoding: .utf8), deadline: killed)
                let gone = log.errors.filter {
                    $0.hasSuffix("Transport endpoint is not connected")
                        || $0.hasSuffix("Software caused connection abort")
                }
                #expect(gone.count == 2, "each thread ends on the dead mount: \(log.errors)")
                let unexpected = log.errors.filter { !Self.isStale($0) && !gone.contains($0) }
                #expect(unexpected.isEmpty, "\(unexpected.prefix(3))")
                stale += log.errors.filter(Self.isStale)
                // A failed call began before the kill (or found the daemon dead): it took effect
                // by the kill or never.
                for var op in log.operations {
                    if case .unknown = op.completion {
                        op.completion = .unknown(deadline: max(killed, op.invoke))
                        cut += 1
                    }
                    history.append(op)
                }
            }
            try m.mount()  // recovers the dead mount point and the store
        }
        var reader = ClientLog(client: 1000)
        for k in (0..<5).map({ "k\($0)" }) {
            try reader.record(.get(key: k)) { [try Self.readKey(m.path(k))] }
        }
        history += reader.operations
        #expect(cut >= 4, "calls cut by the kills")
        Self.check(history, stale: stale, "processes through the mount across daemon kills (\(cut) calls cut)")
    }

    /// A key's value id through the mount, nil when the file does not exist.
    static func readKey(_ path: String) throws -> String? {
        let fd = open(path, O_RDONLY)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw TestFailure("open \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { throw TestFailure("read \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            bytes += chunk[0..<n]
        }
        return HistoryValue.decode(bytes)
    }
}
