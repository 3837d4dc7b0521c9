import Foundation
import Testing

@testable import SliceKV

@Suite struct PeriodicFlushTests {
    /// A memtable holding one small write is flushed once the write is `periodicFlushSeconds`
    /// old, and not before; with the option off it stays in the memtable.
    @Test(arguments: [true, false]) func aSmallWriteReachesATableWithinThePeriod(periodic: Bool) throws {
        let dir = TempDir()
        var o = Options()
        o.periodicFlushSeconds = periodic ? 1 : nil
        let db = try SliceDB(path: dir.path, options: o)
        try db.put(bytes("key"), bytes("value"))
        #expect(db.stats().levels[0].files == 0)
        // The counter moves when the memtable is frozen; the table appears when its flush ends.
        let deadline = Date().addingTimeInterval(periodic ? 20 : 4)
        while Date() < deadline && db.stats().totalFiles == 0 { Thread.sleep(forTimeInterval: 0.1) }
        let s = db.stats()
        #expect(s.periodicFlushes == (periodic ? 1 : 0))
        #expect(s.levels[0].files == (periodic ? 1 : 0))
        #expect(try db.get(bytes("key")) == bytes("value"))
        try db.close()
    }
}
