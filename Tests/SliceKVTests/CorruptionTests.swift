import Foundation
import Testing

@testable import SliceKV

/// Flip bytes in every kind of file: the store must report corruption naming the file (or,
/// for a torn WAL tail only, drop it), and never return wrong data.
@Suite struct CorruptionTests {
    func value(_ i: Int) -> [UInt8] { bytes("value-\(i)-" + String(repeating: "z", count: 40)) }

    /// A store with flushed tables and nothing left in the WAL.
    func makeStore(_ dir: TempDir, keys: Int = 2000) throws {
        var o = Options()
        o.blockSize = 1024
        let db = try SliceDB(path: dir.path, options: o)
        for i in 0..<keys { try db.put("key\(i)", value(i)) }
        try db.flush()
        try db.close()
    }

    @Test func damagedTableIsReportedByGetScanAndCheck() throws {
        let dir = TempDir("slice-corrupt")
        try makeStore(dir)
        let table = files(in: dir.path, suffix: ".sst").first!
        try flipByte(table, at: fileSize(table) / 3)
        let db = try SliceDB(path: dir.path)
        // Every read either returns the right value or throws corruption.
        var failures = 0
        for i in 0..<2000 {
            do {
                if let v = try db.get("key\(i)") { #expect(v == value(i)) } else { Issue.record("key\(i) vanished") }
            } catch let e as SliceError {
                #expect(e.code == .corruption)
                #expect(e.path == table)
                failures += 1
            }
        }
        #expect(failures > 0)
        #expect { _ = try allEntries(db) } throws: { ($0 as? SliceError)?.code == .corruption }
        do {
            _ = try db.check()
            Issue.record("check passed a damaged table")
        } catch let e as SliceError {
            #expect(e.code == .corruption)
            #expect(e.path == table)
        }
        // The CLI exits non-zero and names the file.
        try db.close()
        let r = try run(sliceExecutable, ["check", dir.path])
        #expect(r.status == 2)
        #expect(r.err.contains(table))
    }

    @Test func damagedTableFooterIsReported() throws {
        let dir = TempDir("slice-corrupt")
        try makeStore(dir)
        let table = files(in: dir.path, suffix: ".sst").first!
        try flipByte(table, at: fileSize(table) - 20)
        let db = try SliceDB(path: dir.path)
        #expect { _ = try db.get("key1") } throws: { ($0 as? SliceError)?.code == .corruption }
    }

    /// WAL with many records: damage before the last record is corruption, open fails.
    @Test func damagedWALMiddleFailsOpen() throws {
        let dir = TempDir("slice-corrupt")
        do {
            let db = try SliceDB(path: dir.path)
            for i in 0..<2000 { try db.put("key\(i)", value(i)) }
            // No close: the WAL is left as a crash would leave it.
            let wal = files(in: dir.path, suffix: ".log").last!
            // Half way into the records (a mapped WAL ends in preallocated zeros until close).
            try flipByte(wal, at: dataSize(wal) / 2)
            _ = db
        }
        // The writes above sit in the WAL only if close did not flush them: close syncs but
        // keeps the active memtable in its WAL, which is what recovery replays.
        let wal = files(in: dir.path, suffix: ".log").last!
        do {
            _ = try SliceDB(path: dir.path)
            Issue.record("open succeeded with a damaged WAL")
        } catch let e as SliceError {
            #expect(e.code == .corruption)
            #expect(e.path == wal)
            #expect(e.offset != nil)
        }
        let r = try run(sliceExecutable, ["get", dir.path, "key1"])
        #expect(r.status == 2)
        #expect(r.err.contains(wal))
    }

    @Test func tornWALTailIsDroppedAndReported() throws {
        let dir = TempDir("slice-corrupt")
        do {
            let db = try SliceDB(path: dir.path)
            for i in 0..<100 { try db.put("key\(i)", value(i)) }
        }
        let wal = files(in: dir.path, suffix: ".log").last!
        // Damage inside the last record: the write that was in progress.
        try flipByte(wal, at: fileSize(wal) - 5)
        let db = try SliceDB(path: dir.path)
        #expect(db.recoveryNotes.count == 1)
        #expect(db.recoveryNotes.first?.contains(wal) == true)
        #expect(db.stats().tornWALTailsDropped == 1)
        for i in 0..<99 { #expect(try db.get("key\(i)") == value(i)) }
        #expect(try db.get("key99") == nil)
    }

    @Test func damagedManifestFailsOpen() throws {
        let dir = TempDir("slice-corrupt")
        try makeStore(dir)
        let manifest = files(in: dir.path, suffix: "").first { $0.contains("MANIFEST-") }!
        try flipByte(manifest, at: fileSize(manifest) / 2)
        do {
            _ = try SliceDB(path: dir.path)
            Issue.record("open succeeded with a damaged manifest")
        } catch let e as SliceError {
            #expect(e.code == .corruption)
            #expect(e.path == manifest)
        }
    }

    @Test func missingTableFailsOpen() throws {
        let dir = TempDir("slice-corrupt")
        try makeStore(dir)
        let table = files(in: dir.path, suffix: ".sst").first!
        try FileManager.default.removeItem(atPath: table)
        #expect { _ = try SliceDB(path: dir.path) } throws: { ($0 as? SliceError)?.path == table }
    }
}
