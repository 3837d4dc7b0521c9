import Testing
@testable import SliceKV

@Test func smoke() async throws {
    let dir = "/tmp/slice-smoke-\(UInt32.random(in: 0...UInt32.max))"
    var o = Options()
    o.memtableSize = 64 << 10
    o.targetFileSize = 32 << 10
    o.level1MaxBytes = 128 << 10
    do {
        let db = try SliceDB(path: dir, options: o)
        for i in 0..<20000 { try db.put("key\(i)", "value\(i)") }
        for i in stride(from: 0, to: 20000, by: 3) { try db.delete("key\(i)") }
        try db.flush()
        #expect(try db.get("key1") == Array("value1".utf8))
        #expect(try db.get("key3") == nil)
        try db.compact()
        #expect(try db.get("key19999") == Array("value19999".utf8))
        let c = try db.scan()
        var n = 0
        while let _ = try c.next() { n += 1 }
        #expect(n == 20000 - 6667)
        print(db.stats().summary)
        try db.close()
    }
    let db2 = try SliceDB(path: dir, options: o)
    #expect(try db2.get("key19999") == Array("value19999".utf8))
    #expect(try db2.get("key3") == nil)
}
