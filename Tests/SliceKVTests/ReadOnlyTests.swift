import Foundation
import Testing

@testable import SliceKV

/// A read-only open writes nothing, so it works on a completely full disk and leaves a store
/// (damaged or not) exactly as it was.
@Suite struct ReadOnlyTests {
    /// Every file and its bytes, to compare a directory before and after.
    func snapshot(_ dir: String) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) {
            out[name] = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name))
        }
        return out
    }

    @Test func readOnlyOpenOnAFullDiskWritesNothing() throws {
        let dir = TempDir("slice-ro")
        var o = tinyOptions()
        o.blobThreshold = 300
        do {
            let db = try SliceDB(path: dir.path, options: o)
            for i in 0..<500 { try db.put("k\(i)", String(repeating: "v", count: i % 7 == 0 ? 500 : 40)) }
            try db.flush()
            for i in 0..<50 { try db.put("late\(i)", "only in the WAL") }
        }
        let before = try snapshot(dir.path)
        // A full disk: every call that would change it fails.
        let layer = FaultInjectingFileLayer()
        for kind in FileOperation.mutating where kind != .open && kind != .map {
            layer.inject(.init(kind, occurrence: 1, repeats: nil, effect: .fail(ENOSPC)))
        }
        o.fileLayer = layer
        o.readOnly = true
        let db = try SliceDB(path: dir.path, options: o)
        #expect(try db.get("k7") == Array(String(repeating: "v", count: 500).utf8))
        #expect(try db.get("late49") == Array("only in the WAL".utf8))
        #expect(try allEntries(db).count == 550)
        _ = try db.check()
        #expect { try db.put("x", "y") } throws: { ($0 as? SliceError)?.code == .readOnly }
        #expect { try db.flush() } throws: { ($0 as? SliceError)?.code == .readOnly }
        #expect { try db.compact() } throws: { ($0 as? SliceError)?.code == .readOnly }
        #expect { try db.sync() } throws: { ($0 as? SliceError)?.code == .readOnly }
        try db.close()
        #expect(layer.injectedCount == 0, "a read-only open tried to change the disk")
        #expect(try snapshot(dir.path) == before)
    }

    @Test func readOnlyOpenOfAPathWithoutAStoreCreatesNothing() throws {
        let dir = TempDir("slice-ro")
        var o = Options()
        o.readOnly = true
        #expect { _ = try SliceDB(path: dir.path + "/missing", options: o) } throws: {
            ($0 as? SliceError)?.code == .invalidArgument
        }
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/missing"))
    }
}
