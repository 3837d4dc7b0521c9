import Foundation
import Testing

@testable import SliceKV

@Suite struct CLITests {
    @Test func putGetDeleteAndExitCodes() throws {
        let dir = TempDir("slice-cli")
        let slice = sliceExecutable
        #expect(try run(slice, ["put", dir.path, "user:1", "Alice"]).status == 0)
        #expect(try run(slice, ["put", dir.path, "blob"], stdin: [0, 1, 2, 255, 10]).status == 0)
        let got = try run(slice, ["get", dir.path, "user:1"])
        #expect(got.status == 0)
        #expect(got.out == "Alice")
        #expect(try run(slice, ["get", dir.path, "blob"]).bytes == [0, 1, 2, 255, 10])
        let missing = try run(slice, ["get", dir.path, "nope"])
        #expect(missing.status == 1)
        #expect(missing.err.contains("not found"))
        #expect(try run(slice, ["delete", dir.path, "user:1"]).status == 0)
        #expect(try run(slice, ["get", dir.path, "user:1"]).status == 1)
        for k in ["a", "b", "c"] { #expect(try run(slice, ["put", dir.path, "s/\(k)", k]).status == 0) }
        #expect(
            try run(slice, ["scan", dir.path, "--prefix", "s/", "--reverse", "--keys-only"]).out == "s/c\ns/b\ns/a\n")
        #expect(try run(slice, ["scan", dir.path, "--prefix", "s/", "--reverse", "--limit", "1"]).out == "s/c\tc\n")
        let bad = try run(slice, ["get", dir.path, "x\\q", "--escaped"])
        #expect(bad.status == 2)
        #expect(bad.err.contains("unknown escape"))
    }

    /// Every benchmark runs once at a tiny size and prints a line in db_bench's format (no
    /// timing is asserted; this keeps the benchmark code working).
    @Test func everyBenchmarkRunsAndPrintsParsableLines() throws {
        let dir = TempDir("slice-bench")
        let names = [
            "fillseq", "fillrandom", "overwrite", "fillsync", "fillbatch", "readrandom", "readmissing", "readhot",
            "readseq", "readreverse", "seekrandom", "deleteseq", "deleterandom", "compact", "ycsba", "ycsbb", "ycsbc",
            "ycsbd",
            "ycsbe", "ycsbf", "ycsb_a", "ycsb_b", "ycsb_c", "fillrandom@3", "readrandom@4",
        ]
        let r = try run(
            sliceExecutable,
            [
                "bench", "--num", "2000", "--threads", "2", "--histogram", "--no-settle", "--db", dir.file("db"),
                "--benchmarks",
                (names + ["stats"]).joined(separator: ","),
            ])
        #expect(r.status == 0, "\(r.err)")
        let pattern = try Regex(#"^([a-z_]+(?:@[0-9]+)?)\s+:\s+[0-9]+\.[0-9]{3} micros/op;"#)
        var seen = Set<String>()
        for line in r.out.split(separator: "\n") {
            if let m = try pattern.firstMatch(in: String(line)) { seen.insert(String(m.output[1].substring!)) }
        }
        #expect(seen.isSuperset(of: names), "missing: \(Set(names).subtracting(seen))")
        #expect(r.out.contains("    update "), "YCSB prints per-operation latencies")
        // fillrandom@3 puts every key once (three parts of one permutation), readrandom@4 finds them
        // all (four threads splitting the 2,000 gets).
        #expect(r.out.contains("(2000 of 2000 found)"))
        #expect(r.out.contains("peak RSS: "))
        let batched = try run(
            sliceExecutable,
            [
                "bench", "--num", "1000", "--batch_size", "100", "--db", dir.file("b"), "--benchmarks",
                "fillrandom,readrandom",
            ])
        #expect(batched.status == 0, "\(batched.err)")
        #expect(batched.out.contains("(1000 of 1000 found)"), "a batched fill puts every key once")
        let json = try run(
            sliceExecutable,
            [
                "bench", "--num", "500", "--json", "--no-settle", "--db", dir.file("j"), "--benchmarks",
                "fillrandom,ycsbe",
            ])
        #expect(json.status == 0)
        for line in json.out.split(separator: "\n") {
            let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(obj?["micros_per_op"] is NSNumber)
        }
        let asyncRun = try run(
            sliceExecutable,
            [
                "bench", "--async", "--threads", "3", "--num", "1000", "--no-settle", "--db", dir.file("a"),
                "--benchmarks", "fillseq,readrandom,readmissing,deleterandom,readrandom",
            ])
        #expect(asyncRun.status == 0, "\(asyncRun.err)")
        #expect(asyncRun.out.contains("(1000 of 1000 found)"), "every key read back through the async API")
        #expect(asyncRun.out.components(separatedBy: "(0 of 1000 found)").count == 3, "missing and deleted keys")
        #expect(asyncRun.out.contains("per thread ops/s"))
        let bad = try run(sliceExecutable, ["bench", "--num", "10", "--db", dir.file("x"), "--benchmarks", "nosuch"])
        #expect(bad.status != 0)
    }

    @Test func checkpointCopiesTheStoreIntoANewDirectory() throws {
        let dir = TempDir("slice-cli-ckpt")
        #expect(try run(sliceExecutable, ["put", dir.file("db"), "a"], stdin: Array("one".utf8)).status == 0)
        #expect(try run(sliceExecutable, ["put", dir.file("db"), "b"], stdin: Array("two".utf8)).status == 0)
        let made = try run(sliceExecutable, ["checkpoint", dir.file("db"), dir.file("copy")])
        #expect(made.status == 0, "\(made.err)")
        #expect(try run(sliceExecutable, ["get", dir.file("copy"), "b"]).out == "two")
        #expect(try run(sliceExecutable, ["put", dir.file("db"), "c"], stdin: Array("three".utf8)).status == 0)
        #expect(try run(sliceExecutable, ["get", dir.file("copy"), "c"]).status != 0, "later writes stay out")
        let again = try run(sliceExecutable, ["checkpoint", dir.file("db"), dir.file("copy")])
        #expect(again.status != 0 && again.err.contains("exists"), "\(again.err)")
    }

    /// `--compression` on commands that write, reported by `stats`; a bad name is refused.
    @Test func compressionOptionCompressesTablesAndStatsShowIt() throws {
        let dir = TempDir("slice-cli-zstd")
        let lines = (0..<2000).map { "key\($0)\t" + String(repeating: "text \($0 % 10) ", count: 12) + "\n" }.joined()
        let imported = try run(
            sliceExecutable, ["import", dir.file("db"), "--compression", "zstd"], stdin: Array(lines.utf8))
        #expect(imported.status == 0, "\(imported.err)")
        #expect(try run(sliceExecutable, ["compact", dir.file("db"), "--compression", "zstd"]).status == 0)
        let stats = try run(sliceExecutable, ["stats", dir.file("db")])
        #expect(stats.out.contains("uncompressed") && stats.out.contains("blocks compressed"), "\(stats.out)")
        #expect(
            try run(sliceExecutable, ["get", dir.file("db"), "key1234"]).out == String(repeating: "text 4 ", count: 12))
        let bad = try run(sliceExecutable, ["put", dir.file("db"), "k", "v", "--compression", "snappy"])
        #expect(bad.status != 0 && bad.err.contains("compression"), "\(bad.err)")
    }

    @Test func largeValuesStreamThroughPutAndGet() throws {
        let dir = TempDir("slice-cli")
        let value = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 >> 3) }
        #expect(try run(sliceExecutable, ["put", dir.path, "big"], stdin: value).status == 0)
        let got = try run(sliceExecutable, ["get", dir.path, "big"])
        #expect(got.status == 0)
        #expect(got.bytes == value)
        let check = try run(sliceExecutable, ["check", dir.path])
        #expect(check.status == 0)
        #expect(check.out.contains("1 blob values (\(3 << 20) bytes)"), "\(check.out)")
    }

    @Test func scanOutputReimportsIntoAnEqualStore() throws {
        let a = TempDir("slice-cli")
        let b = TempDir("slice-cli")
        do {
            let db = try SliceDB(path: a.path)
            var rng = SeededRandom(seed: 5)
            for i in 0..<500 {
                let key = bytes("k\(i)") + (i % 10 == 0 ? [0x09, 0x0a, 0x5c, 0xff, 0x00] : [])
                let value = (0..<Int.random(in: 0..<64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng)
                }
                try db.put(key, value)
            }
            try db.put("é/ünïcode", "välue")
        }
        let scan = try run(sliceExecutable, ["scan", a.path])
        #expect(scan.status == 0)
        #expect(scan.out.contains("é/ünïcode\tvälue"))
        let dump = a.file("dump.tsv")
        try Data(scan.out.utf8).write(to: URL(fileURLWithPath: dump))
        let imported = try run(sliceExecutable, ["import", b.path, dump])
        #expect(imported.status == 0, "\(imported.err)")
        let left = try SliceDB(path: a.path)
        let right = try SliceDB(path: b.path)
        #expect(try allEntries(left) == allEntries(right))
        #expect(try allEntries(right).count == 501)
        try left.close()
        try right.close()
        // Options: prefix, start/end, limit, keys-only.
        let limited = try run(sliceExecutable, ["scan", a.path, "--prefix", "k1", "--limit", "3", "--keys-only"])
        #expect(limited.out.split(separator: "\n").count == 3)
        #expect(!limited.out.contains("\t"))
        let ranged = try run(sliceExecutable, ["scan", a.path, "--start", "k2", "--end", "k3", "--keys-only"])
        #expect(ranged.out.split(separator: "\n").allSatisfy { $0.hasPrefix("k2") })
        // Malformed import input is refused with the line number.
        let broken = a.file("broken.tsv")
        try Data("good\tline\nno-tab-here\n".utf8).write(to: URL(fileURLWithPath: broken))
        let r = try run(sliceExecutable, ["import", b.path, broken])
        #expect(r.status == 2)
        #expect(r.err.contains("line 2"))
    }

    /// A mistyped path holds no store (no CURRENT file): every command that only reads or
    /// acts on a store says so and exits 2, and nothing is created there. Writes create one.
    @Test func commandsOnAPathWithoutAStoreFailAndCreateNothing() throws {
        let dir = TempDir("slice-cli")
        let missing = dir.file("typo/store")
        let empty = dir.file("empty")
        let plain = dir.file("plain")
        #expect(mkdir(empty, 0o755) == 0)
        #expect(FileManager.default.createFile(atPath: plain, contents: Data("x".utf8)))
        for path in [missing, empty, plain] {
            for args in [
                ["get", path, "k"], ["scan", path], ["check", path], ["stats", path], ["stats", path, "--json"],
                ["delete", path, "k"], ["flush", path], ["compact", path],
            ] {
                let r = try run(sliceExecutable, args)
                #expect(r.status == 2, "\(args)")
                #expect(r.err.contains("no store at \(path)"), "\(args): \(r.err)")
                #expect(r.out.isEmpty, "\(args)")
            }
        }
        #expect(try run(sliceExecutable, ["check", missing]).err.contains("no such directory"))
        #expect(try run(sliceExecutable, ["check", empty]).err.contains("no CURRENT file"))
        #expect(try run(sliceExecutable, ["check", plain]).err.contains("not a directory"))
        #expect(!FileManager.default.fileExists(atPath: dir.file("typo")))
        #expect(try FileManager.default.contentsOfDirectory(atPath: empty).isEmpty)
        #expect(FileManager.default.contents(atPath: plain) == Data("x".utf8))

        // Commands that write create the store, and then the others find it.
        #expect(try run(sliceExecutable, ["put", missing, "k", "v"]).status == 0)
        #expect(FileManager.default.fileExists(atPath: missing + "/CURRENT"))
        #expect(try run(sliceExecutable, ["get", missing, "k"]).out == "v")
        #expect(try run(sliceExecutable, ["check", missing]).status == 0)
        let imported = try run(sliceExecutable, ["import", dir.file("new")], stdin: Array("a\tb\n".utf8))
        #expect(imported.status == 0, "\(imported.err)")
        #expect(try run(sliceExecutable, ["scan", dir.file("new")]).out == "a\tb\n")
        // An empty store is a store: reading it is fine.
        #expect(try run(sliceExecutable, ["delete", missing, "k"]).status == 0)
        #expect(try run(sliceExecutable, ["scan", missing]).status == 0)
    }

    /// `crash-verify` (the kill loop's check) must notice an acknowledged write that is missing,
    /// one that holds something else, and a key nobody wrote; and accept what a kill may leave.
    @Test func crashVerifyReportsLostAndUnwrittenKeys() throws {
        let dir = TempDir("slice-cli")
        let store = dir.file("store")
        do {
            let db = try SliceDB(path: store)
            try db.put("kept", "v1")
            try db.put("changed", "other")
            try db.put("stray", "x")
            try db.put("inflight", "new")
            try db.close()
        }
        let log = dir.file("log")
        let lines = [
            "B 0 P kept v1", "A 0", "B 0 P changed v2", "A 0", "B 1 P lost v3", "A 1", "B 1 D gone", "A 1",
            "B 2 P inflight new", "B 3 P neverapplied z", "A 9", "B 0 P cut",
        ]
        try Data(lines.joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: log))
        let r = try run(sliceExecutable, ["crash-verify", store, "--state", dir.file("state"), "--log", log])
        #expect(r.status == 1)
        #expect(r.out.contains("checked: 4 acknowledged operations"), "\(r.out)")
        #expect(r.err.contains("key changed is 5 bytes \"other\", acknowledged 2 bytes \"v2\""), "\(r.err)")
        #expect(r.err.contains("key lost is absent, acknowledged 2 bytes \"v3\""))
        #expect(r.err.contains("key stray (1 bytes \"x\") was never written"))
        #expect(!r.err.contains("kept") && !r.err.contains("gone") && !r.err.contains("inflight"))
        #expect(!r.err.contains("neverapplied"))
    }

    @Test func storeInUseGivesAClearError() throws {
        let dir = TempDir("slice-cli")
        let db = try SliceDB(path: dir.path)
        let r = try run(sliceExecutable, ["get", dir.path, "k"])
        #expect(r.status == 2)
        #expect(r.err.contains("in use by another process"))
        try db.close()
    }

    @Test func statsFlushCompactCheck() throws {
        let dir = TempDir("slice-cli")
        let db = try SliceDB(path: dir.path)
        for i in 0..<1000 { try db.put("k\(i)", "v\(i)") }
        try db.close()
        #expect(try run(sliceExecutable, ["flush", dir.path]).status == 0)
        #expect(try run(sliceExecutable, ["compact", dir.path]).status == 0)
        let check = try run(sliceExecutable, ["check", dir.path])
        #expect(check.status == 0)
        #expect(check.out.hasPrefix("ok: "))
        let json = try run(sliceExecutable, ["stats", dir.path, "--json"])
        let object = try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [String: Any]
        #expect((object?["levels"] as? [[String: Any]])?.contains { ($0["files"] as? Int ?? 0) > 0 } == true)
        let prom = try run(sliceExecutable, ["stats", dir.path, "--prometheus"])
        #expect(prom.out.contains("# TYPE slice_level_files gauge"))
        let demo = try run(sliceExecutable, ["demo", dir.path + "/demo", "--count", "2000"])
        #expect(demo.status == 0)
        #expect(demo.out.contains("loaded 2000 entries"))
    }
}
