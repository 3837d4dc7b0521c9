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
    @Test func processesThroughTheMountAcrossARemount() throws {
        let m = try MountedStore()
        var history: [OperationRecord] = []
        var stale: [String] = []
        for round in 0..<2 {
            var processes: [(Process, String)] = []
            for p in 0..<4 {
                let client = round * 100 + p * 10
                let output = m.root + "/history-\(client).txt"
                _ = FileManager.default.createFile(atPath: output, contents: nil)
                let process = Process()
                process.executableURL = URL(fileURLWithPath: sliceExecutable)
                process.arguments = [
                    "history-client", m.mnt, "--files", "--threads", "2", "--ops", "150", "--client", "\(client)",
                    "--seed", "\(client + 1)",
                ]
                process.standardOutput = FileHandle(forWritingAtPath: output)
                process.standardError = FileHandle(forWritingAtPath: "/dev/null")
                try process.run()
                processes.append((process, output))
            }
            for (process, output) in processes {
                process.waitUntilExit()
                let log = HistoryLog(try String(contentsOfFile: output, encoding: .utf8), deadline: nil)
                #expect(process.terminationStatus == (log.errors.isEmpty ? 0 : 3), "see \(output)")
                let unexpected = log.errors.filter { !$0.hasSuffix("Stale file handle") }
                #expect(unexpected.isEmpty, "\(unexpected.prefix(3))")
                stale += log.errors.filter { $0.hasSuffix("Stale file handle") }
                #expect(log.completed + log.errors.count == 300)
                history += log.operations
            }
            // A clean restart of the mount between the rounds: the second reads what the first wrote.
            try m.unmount()
            try m.mount()
        }
        let clock = ContinuousClock()
        var result: LinearizabilityResult?
        let took = clock.measure { result = LinearizabilityChecker().check(history) }
        #expect(result!.isLinearizable, "\(result!)")
        let violations = SessionChecker.check(history)
        #expect(violations.isEmpty, "\(violations.prefix(5))")
        print("processes through the mount: \(result!), \(stale.count) ESTALE, checked in \(took)")
        withKnownIssue("open(2) racing a rename over the same name fails with ESTALE", isIntermittent: true) {
            #expect(stale.isEmpty, "\(stale.count) gets failed with ESTALE: \(stale.prefix(3))")
        }
    }
}
