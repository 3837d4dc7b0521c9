import Foundation
import Testing

/// `scripts/kill-loop.sh` at CI size: SIGKILLs a writer at random moments, 25 times through
/// the API and 25 times through a mount (daemon and writer together), and checks every
/// acknowledged operation after each kill. `SLICE_KILL_CYCLES=1000` for a full run. In a debug
/// build most of a cycle is the recovery after the kill (about a second to read past the
/// preallocated zeros at the end of the WAL), so 25 per mode keeps this near a minute.
@Suite struct KillLoopTests {
    @Test func acknowledgedWritesSurviveRandomKills() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        let cycles = ProcessInfo.processInfo.environment["SLICE_KILL_CYCLES"] ?? "25"
        let r = try run(
            "/bin/bash",
            [repo + "/scripts/kill-loop.sh", "--cycles", cycles, "--seed", "7", "--slice", sliceExecutable])
        #expect(r.status == 0, "\(r.out)\n\(r.err)")
        for mode in ["api", "mount"] {
            let line = r.out.split(separator: "\n").first { $0.hasPrefix("kill-loop: \(mode): ") } ?? ""
            #expect(line.contains("cycles=\(cycles) ") && line.contains(" failures=0 "), "\(r.out)")
            let verified = line.firstMatch(of: /acknowledged_ops_verified=([0-9]+)/).flatMap { Int($0.1) } ?? 0
            #expect(verified > 0, "\(mode): nothing was acknowledged before the kills")
        }
    }
}
