import Foundation
import Testing

@testable import SliceKV

/// `EIO` and `ENOSPC` at every call that changes the disk (open, write, sync, truncate,
/// allocate, map, remove, rename, directory sync) made by the scripted workload: its writes,
/// flushes, a compaction with blob garbage collection, MANIFEST writes and rolls, blob writes.
///
/// For each call: the failure reaches the caller as a `SliceError` (`.ioError`/`.noSpace`),
/// directly or as the background error the next write fails with; nothing acknowledged is
/// lost and the store on disk stays consistent (it reopens, `check` passes); once the fault
/// clears, writes resume — without a reopen after a failed write, flush or compaction that
/// left the store consistent, after a reopen when the store stopped itself (a failed WAL
/// write or sync: what that call wrote may not be on the disk, so it is never retried as if
/// it were). `EIO` hits one call; `ENOSPC` stays until cleared, like a full disk.
@Suite struct IOFaultTests {
    struct Setup: Sendable, CustomTestStringConvertible {
        var errno: Int32
        var mmapWrites: Bool
        /// Writes only: half of the bytes reach the file before the error.
        var tear = false
        var testDescription: String {
            "\(tear ? "torn write, " : "")\(errno == EIO ? "EIO" : "ENOSPC"), mmapWrites \(mmapWrites)"
        }
        var kinds: [FileOperation] { tear ? [.write] : FileOperation.mutating }
    }

    static let setups = [
        Setup(errno: EIO, mmapWrites: false), Setup(errno: ENOSPC, mmapWrites: false),
        Setup(errno: EIO, mmapWrites: true), Setup(errno: ENOSPC, mmapWrites: true),
        Setup(errno: EIO, mmapWrites: false, tear: true), Setup(errno: ENOSPC, mmapWrites: true, tear: true),
    ]

    struct Outcome {
        var calls = 0
        var injected = false
        var reopened = false
    }

    static func run(_ setup: Setup, _ kind: FileOperation, _ n: Int?) -> Outcome {
        let dir = TempDir("slice-iofault")
        let layer = FaultInjectingFileLayer()
        if let n {
            let effect: FaultInjectingFileLayer.Fault.Effect = setup.tear ? .tear(setup.errno) : .fail(setup.errno)
            layer.inject(.init(kind, occurrence: n, repeats: setup.errno == EIO ? 1 : nil, effect: effect))
        }
        let what = "\(setup.testDescription), \(kind) #\(n ?? 0)"
        let options = ScriptedWorkload.options(policy: .always, mmapWrites: setup.mmapWrites, layer: layer)
        let workload = ScriptedWorkload()
        var outcome = Outcome()
        func isClear(_ error: Error) -> Bool {
            guard let e = error as? SliceError else { return false }
            return e.code == .ioError || e.code == .noSpace
        }
        var db: SliceDB
        do {
            db = try SliceDB(path: dir.path, options: options)
        } catch {
            #expect(isClear(error), "\(what): open failed with \(error)")
            layer.clearFaults()
            do { db = try SliceDB(path: dir.path, options: options) } catch {
                Issue.record("\(what): the store does not open once the fault cleared: \(error)")
                return outcome
            }
        }
        workload.run(db, policy: .always)
        outcome.calls = layer.count(of: kind)
        outcome.injected = layer.injectedCount > 0
        if let e = workload.failure {
            #expect(isClear(e), "\(what): the workload failed with \(e)")
            if let message = db.stats().backgroundError {
                // A stopped store keeps refusing writes until it is reopened.
                #expect(throws: SliceError.self, "\(what): \(message)") { try db.put("after", "x") }
            }
        }
        layer.clearFaults()
        do {
            try db.put("resume", "1")
        } catch {
            #expect(isClear(error), "\(what): a write after the fault cleared failed with \(error)")
            try? db.close()
            outcome.reopened = true
            do {
                db = try SliceDB(path: dir.path, options: options)
                try db.put("resume", "1")
            } catch {
                Issue.record("\(what): writes do not resume after a reopen: \(error)")
                return outcome
            }
        }
        do { try db.close() } catch { Issue.record("\(what): close failed after the fault cleared: \(error)") }
        workload.verify(dir.path, .acknowledged, what, otherKeys: ["resume", "after"])
        return outcome
    }

    @Test(arguments: setups)
    func faultAtEveryCallThatChangesTheDisk(_ setup: Setup) {
        var report: [String] = []
        for kind in setup.kinds {
            let total = Self.run(setup, kind, nil).calls
            var injected = 0
            var reopened = 0
            for n in stride(from: 1, through: total, by: 1) {
                let o = Self.run(setup, kind, n)
                if o.injected { injected += 1 }
                if o.reopened { reopened += 1 }
            }
            report.append("\(kind) \(injected)/\(total) (reopen \(reopened))")
        }
        print("\(setup.testDescription): faults injected per kind: " + report.joined(separator: ", "))
    }

    /// The fsyncgate lesson: after a failed WAL sync the store stops (the kernel may have
    /// dropped the unwritten pages), says so in `stats`, refuses writes and reports the error
    /// again at close, instead of retrying the sync and trusting it.
    @Test func failedWALSyncStopsTheStoreUntilReopened() throws {
        let dir = TempDir("slice-iofault")
        let layer = FaultInjectingFileLayer()
        var o = Options()
        o.syncPolicy = .always
        o.fileLayer = layer
        var db = try SliceDB(path: dir.path, options: o)
        try db.put("before", "1")
        layer.inject(.init(.sync, occurrence: 1, effect: .fail(EIO), pathContains: ".log"))
        #expect { try db.put("failed", "2") } throws: { ($0 as? SliceError)?.errno == EIO }
        #expect { try db.put("later", "3") } throws: { ($0 as? SliceError)?.errno == EIO }
        #expect { try db.sync() } throws: { _ in true }
        let stats = db.stats()
        #expect(stats.backgroundError?.contains("sync") == true)
        #expect(stats.prometheusText.contains("slice_background_error 1"))
        #expect(throws: SliceError.self) { try db.close() }
        db = try SliceDB(path: dir.path, options: o)
        #expect(try db.get("before") == Array("1".utf8))
        #expect(try db.get("later") == nil)
        try db.put("after", "4")
        #expect(db.stats().backgroundError == nil)
        try db.close()
    }

    /// A full disk during a flush is not fatal: the memtable stays queued with its WAL and the
    /// flush is retried; `flush()` and writes that would have to wait for it fail with
    /// `.noSpace` instead of waiting forever; once space is back everything goes on without a
    /// reopen, and nothing acknowledged is lost.
    @Test func fullDiskDuringFlushResumesWithoutReopen() throws {
        let dir = TempDir("slice-iofault")
        let layer = FaultInjectingFileLayer()
        var o = tinyOptions()
        o.fileLayer = layer
        let db = try SliceDB(path: dir.path, options: o)
        layer.inject(.init(.write, occurrence: 1, repeats: nil, effect: .fail(ENOSPC), pathContains: ".sst"))
        let value = Array(String(repeating: "v", count: 100).utf8)
        var acknowledged = 0
        var refused: SliceError?
        for i in 0..<2000 {
            do {
                try db.put(Array("k\(i)".utf8), value)
                acknowledged += 1
            } catch {
                refused = error as? SliceError
                break
            }
        }
        #expect(refused?.code == .noSpace, "writes were not refused on a full disk")
        #expect { try db.flush() } throws: { ($0 as? SliceError)?.code == .noSpace }
        #expect(db.stats().backgroundError == nil)
        layer.clearFaults()
        try db.flush()
        #expect(db.stats().totalFiles > 0)
        for i in 0..<acknowledged { #expect(try db.get(Array("k\(i)".utf8)) == value) }
        try db.put("after", "1")
        try db.close()
    }

    /// Random delays before file calls (up to 3 ms before a fifth of them) while four threads
    /// write and background flushes and compactions run: timing changes nothing.
    @Test func randomDelaysChangeNothing() throws {
        let dir = TempDir("slice-iofault")
        let layer = FaultInjectingFileLayer()
        layer.setDelays(probability: 0.2, maxMicroseconds: 3000, seed: 5)
        var o = tinyOptions()
        o.fileLayer = layer
        let db = try SliceDB(path: dir.path, options: o)
        DispatchQueue.concurrentPerform(iterations: 4) { t in
            for i in 0..<150 {
                let key = Array("t\(t)-\(i % 40)".utf8)
                let value = Array("v\(i)-".utf8) + [UInt8](repeating: UInt8(t), count: i % 3 == 0 ? 400 : 20)
                do {
                    try db.put(key, value)
                    #expect(try db.get(key) == value)
                } catch { Issue.record("thread \(t): \(error)") }
            }
        }
        try db.flush()
        try db.close()
        let reopened = try SliceDB(path: dir.path, options: tinyOptions())
        for t in 0..<4 {
            for i in 110..<150 {
                let value = Array("v\(i)-".utf8) + [UInt8](repeating: UInt8(t), count: i % 3 == 0 ? 400 : 20)
                #expect(try reopened.get(Array("t\(t)-\(i % 40)".utf8)) == value)
            }
        }
        _ = try reopened.check()
    }
}
