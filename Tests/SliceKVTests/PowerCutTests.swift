import Foundation
import Testing

@testable import SliceKV

/// Power cuts at every sync point of a scripted workload (LevelDB's `fault_injection_test`,
/// made exhaustive): the workload runs once to count its `fdatasync`s and directory fsyncs,
/// then once per sync point with the power cut just before that call. After the "reboot"
/// (`FaultInjectingFileLayer.reboot`: unsynced bytes and unsynced directory entries are lost,
/// every other run keeping a random prefix of the unsynced bytes instead) the store must open,
/// pass `check`, hold every durable write, and hold nothing that was never written.
@Suite struct PowerCutTests {
    struct Setup: Sendable, CustomTestStringConvertible {
        var policy: Options.SyncPolicy
        var mmapWrites: Bool
        var testDescription: String { "sync \(policy), mmapWrites \(mmapWrites)" }
    }

    static let setups = [
        Setup(policy: .always, mmapWrites: true), Setup(policy: .always, mmapWrites: false),
        Setup(policy: .none, mmapWrites: true),
    ]

    /// Runs the workload with the power cut at the `n`th call of `kind` (nil: never) and checks
    /// the store after the reboot. Returns the number of calls of `kind` the run made.
    @discardableResult
    static func run(_ setup: Setup, cutAt kind: FileOperation, _ n: Int?, unsynced: PowerCutJournal.UnsyncedData)
        -> Int
    {
        let dir = TempDir("slice-powercut")
        let layer = FaultInjectingFileLayer()
        if let n { layer.inject(.init(kind, occurrence: n, effect: .powerCut)) }
        let workload = ScriptedWorkload()
        let options = ScriptedWorkload.options(policy: setup.policy, mmapWrites: setup.mmapWrites, layer: layer)
        do {
            let db = try SliceDB(path: dir.path, options: options)
            workload.run(db, policy: setup.policy)
            if let e = workload.failure { #expect(layer.isPowerOff, "the workload failed without a power cut: \(e)") }
            try? db.close()
        } catch {
            #expect(layer.isPowerOff, "open failed without a power cut: \(error)")
        }
        let count = layer.count(of: kind)
        layer.reboot(unsynced: unsynced)
        workload.verify(dir.path, .durable, "\(setup.testDescription), power cut at \(kind) #\(n ?? 0)")
        return count
    }

    @Test(arguments: setups)
    func powerCutAtEverySyncPoint(_ setup: Setup) {
        var points = 0
        for kind in [FileOperation.sync, .syncDirectory] {
            let total = Self.run(setup, cutAt: kind, nil, unsynced: .lost)
            #expect(total > 0)
            for n in 1...max(1, total) {
                Self.run(setup, cutAt: kind, n, unsynced: n % 2 == 0 ? .lost : .randomPrefix(seed: UInt64(n)))
                points += 1
            }
        }
        print("power cut at \(points) sync points (\(setup.testDescription))")
    }
}
