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

    /// A crash in the middle of an append leaves the last record of the WAL unfinished: cut
    /// short (appends with `write`), or ending in the zeros of preallocated space (mapped
    /// appends). That write was never acknowledged as synced, and is dropped with a warning.
    @Test(arguments: [true, false]) func tornWALTailIsDroppedAndReported(mmapWrites: Bool) throws {
        let dir = TempDir("slice-corrupt")
        let crashed = TempDir("slice-corrupt")
        var o = Options()
        o.mmapWrites = mmapWrites
        let db = try SliceDB(path: dir.path, options: o)
        for i in 0..<100 { try db.put("key\(i)", value(i)) }
        // The directory as a crash of the process leaves it (no clean close).
        try FileManager.default.removeItem(atPath: crashed.path)
        try FileManager.default.copyItem(atPath: dir.path, toPath: crashed.path)
        try db.close()
        let wal = files(in: crashed.path, suffix: ".log").last!
        let end = try LogReader(path: wal, mode: .strict, layer: PosixFileLayer.shared).read { _ in }.validBytes
        let f = try PosixFileLayer.shared.open(wal, flags: O_RDWR, mode: 0o600)
        if mmapWrites {
            try [UInt8](repeating: 0, count: 5).withUnsafeBytes { try f.write($0, at: end - 5) }
        } else {
            try f.truncate(to: end - 5)
        }
        let reopened = try SliceDB(path: crashed.path, options: o)
        #expect(reopened.recoveryNotes.count == 1)
        #expect(reopened.recoveryNotes.first?.contains(wal) == true)
        #expect(reopened.stats().tornWALTailsDropped == 1)
        for i in 0..<99 { #expect(try reopened.get("key\(i)") == value(i)) }
        #expect(try reopened.get("key99") == nil)
    }

    /// A flipped byte in the last complete record of the newest WAL is damage, not a torn
    /// write: open fails naming file and offset and changes nothing; `check` exits non-zero;
    /// `pointInTime` recovery opens without that write, says so loudly, and keeps the WAL aside.
    @Test func damagedLastWALRecordFailsOpenUnlessRecoveryIsLenient() throws {
        let dir = TempDir("slice-corrupt")
        do {
            let db = try SliceDB(path: dir.path)
            for i in 0..<100 { try db.put("key\(i)", value(i)) }
        }
        let wal = files(in: dir.path, suffix: ".log").last!
        try flipByte(wal, at: fileSize(wal) - 5)
        let before = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        do {
            _ = try SliceDB(path: dir.path)
            Issue.record("a damaged last WAL record was dropped silently")
        } catch let e as SliceError {
            #expect(e.code == .corruption && e.path == wal && e.offset != nil)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == before)
        let check = try run(sliceExecutable, ["check", dir.path])
        #expect(check.status == 2 && check.err.contains(wal))
        var o = Options()
        o.walRecovery = .pointInTime
        let db = try SliceDB(path: dir.path, options: o)
        #expect(db.recoveryNotes.contains { $0.contains("DROPPED") && $0.contains(wal) })
        #expect(db.stats().walBytesDroppedByRecovery > 0)
        for i in 0..<99 { #expect(try db.get("key\(i)") == value(i)) }
        #expect(try db.get("key99") == nil)
        #expect(FileManager.default.fileExists(atPath: wal + FileNames.damagedSuffix))
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
