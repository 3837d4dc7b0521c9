import Foundation
import Testing

@testable import SliceKV

@Suite struct NamedSnapshotTests {
    /// A named snapshot holds the store as it was, survives reopening, opens read-only while
    /// the store is open, reports the space it alone keeps once the store compacts, and goes
    /// with `deleteSnapshot`.
    @Test func createOpenListSpaceDelete() throws {
        let dir = TempDir()
        var o = tinyOptions()
        o.compaction.style = .leveled
        do {
            let db = try SliceDB(path: dir.path, options: o)
            for i in 0..<2000 { try db.put(bytes("k\(i)"), bytes("old \(i)")) }
            try db.createSnapshot(named: "before")
            #expect(throws: SliceError.self) { try db.createSnapshot(named: "before") }
            for bad in ["", ".hidden", "a/b", String(repeating: "x", count: 256)] {
                #expect(throws: SliceError.self) { try db.createSnapshot(named: bad) }
            }
            for i in 0..<2000 { try db.put(bytes("k\(i)"), bytes("new \(i)")) }
            try db.delete(bytes("k7"))
            try db.compact()
            #expect(try db.snapshotNames() == ["before"])
            let space = try #require(db.stats().namedSnapshots.first)
            #expect(space.name == "before" && space.bytes > 0)
            #expect(space.unsharedBytes > 0, "compaction replaced the shared tables: the snapshot keeps them")
            #expect(db.stats().prometheusText.contains("slice_snapshot_unshared_bytes{name=\"before\"}"))
            // Readable while the store is open (a shared lock), and as it was.
            let snap = try SliceDB.openSnapshot(named: "before", of: dir.path)
            #expect(try snap.get(bytes("k7")) == bytes("old 7"))
            #expect(try allEntries(snap).count == 2000)
            #expect(throws: SliceError.self) { try snap.put(bytes("x"), bytes("y")) }
            let second = try SliceDB.openSnapshot(named: "before", of: dir.path)
            #expect(try second.get(bytes("k1999")) == bytes("old 1999"))
            try second.close()
            // Not deleted while a reader has it open.
            #expect {
                try db.deleteSnapshot(named: "before")
            } throws: { ($0 as? SliceError)?.code == .locked }
            try snap.close()
            try db.close()
        }
        // Leftovers of a crash (a partial creation, a half-done deletion) are not listed and
        // go at the next creation.
        try FileManager.default.createDirectory(
            atPath: dir.file("snapshots/.later.partial"), withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: dir.file("snapshots/.later.partial/000001.sst"), contents: Data([1]))
        try FileManager.default.createDirectory(
            atPath: dir.file("snapshots/.gone.deleting"), withIntermediateDirectories: true)
        let db = try SliceDB(path: dir.path, options: o)
        #expect(try db.snapshotNames() == ["before"])
        try db.createSnapshot(named: "later")
        #expect(try db.snapshotNames() == ["before", "later"])
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: dir.file("snapshots")).sorted() == ["before", "later"])
        #expect(try SliceDB.openSnapshot(named: "later", of: dir.path).get(bytes("k7")) == nil)
        try db.deleteSnapshot(named: "before")
        #expect(try db.snapshotNames() == ["later"])
        #expect(!FileManager.default.fileExists(atPath: dir.file("snapshots/before")))
        #expect(throws: SliceError.self) { try db.deleteSnapshot(named: "before") }
        #expect(throws: SliceError.self) { try SliceDB.openSnapshot(named: "before", of: dir.path) }
        #expect(try db.get(bytes("k1")) == bytes("new 1"))
        try db.close()
    }
}
