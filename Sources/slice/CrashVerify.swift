import ArgumentParser
import Foundation
import SliceKV

#if canImport(Glibc)
    import Glibc
#endif

/// Test support for `scripts/kill-loop.sh`: after a writer (and, through a mount, its daemon)
/// was killed, checks that every acknowledged operation survived and nothing unwritten
/// appeared, carrying what was acknowledged from one kill to the next in a state file.
struct CrashVerify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crash-verify",
        abstract: "Test support: check a store after a kill against what crash writers acknowledged.",
        discussion: """
            Prints one line (operations acknowledged since the last check, in total, keys); \
            each problem goes to standard error. Exit status 1 when anything acknowledged is \
            missing or wrong, or the store does not open or check.
            """,
        shouldDisplay: false)

    @Argument(help: "The store's data directory; with --mount, the mount point of the store.") var path: String
    @Option(help: "The ledger carried between checks; created when missing, updated.") var state: String
    @Option(help: "A writer's output since the last check (repeatable).") var log: [String] = []
    @Flag(help: "Read the files of a mounted store (crash-file-writer) instead of opening it.") var mount = false

    func run() throws {
        var ledger = CrashLedger(stateText: (try? String(contentsOfFile: state, encoding: .utf8)) ?? "")
        let acksBefore = ledger.acks
        for file in log {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw CLIError("cannot read \(file)")
            }
            ledger.apply(output: String(decoding: data, as: UTF8.self))
        }
        var problems: [String] = []
        var actual: [String: [UInt8]] = [:]
        do {
            if mount {
                actual = try filesUnder(path)
            } else {
                actual = try entries(of: path, problems: &problems)
            }
        } catch {
            problems.append("cannot read the store: \(error)")
        }
        if problems.isEmpty {
            let expand: (String) -> [UInt8]
            if mount { expand = { CrashFileWriter.content($0) } } else { expand = { Array($0.utf8) } }
            problems = ledger.verify(actual: actual, content: expand, partialWrites: mount)
        }
        try Data(ledger.stateText.utf8).write(to: URL(fileURLWithPath: state), options: .atomic)
        print(
            "checked: \(ledger.acks - acksBefore) acknowledged operations (\(ledger.acks) in total), \(ledger.acknowledged.count) keys, \(problems.count) problems"
        )
        for p in problems.prefix(20) { Terminal.error("FAIL: \(p)") }
        if problems.count > 20 { Terminal.error("FAIL: ... and \(problems.count - 20) more") }
        if !problems.isEmpty { throw ExitCode(1) }
    }

    /// Every entry of the store, which must open and pass `check`.
    private func entries(of dir: String, problems: inout [String]) throws -> [String: [UInt8]] {
        let db = try SliceDB(path: dir)
        var out: [String: [UInt8]] = [:]
        let cursor = try db.scan()
        while let kv = try cursor.next() { out[kv.keyString] = kv.value }
        do { _ = try db.check() } catch { problems.append("check failed: \(error)") }
        try db.close()
        return out
    }

    /// Every file at the top of a mount (the control files aside), read through the mount.
    private func filesUnder(_ mnt: String) throws -> [String: [UInt8]] {
        var out: [String: [UInt8]] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: mnt) where !name.hasPrefix(".") {
            guard let data = FileManager.default.contents(atPath: "\(mnt)/\(name)") else {
                throw CLIError("cannot read \(mnt)/\(name): \(String(cString: strerror(errno)))")
            }
            out[name] = [UInt8](data)
        }
        return out
    }
}
