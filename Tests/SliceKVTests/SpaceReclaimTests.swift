import Foundation
import Synchronization
import Testing

@testable import SliceKV

/// Space that comes back by itself: large values that are overwritten or deleted become
/// counted garbage soon after nothing can read them, and their blob files are collected in
/// the background, with no `compact()`. The stores use the options `slice mount` opens with.
///
/// The bound checked while they run (see BENCHMARKS.md, "Space"): the data directory never
/// holds more than twice the live data, plus twice the values one memtable overwrites (the
/// hot set: older copies of it wait in the previous generation's file and among the values
/// garbage collection moved), plus a fixed allowance (`allowance`).
@Suite struct SpaceReclaimTests {
    /// `slice mount`'s engine options: `SliceFileSystem.defaultBlobThreshold` (4 KiB) and
    /// `defaultBlobFileSize` (16 MiB, also its space reserve), everything else the engine's
    /// default.
    static func mountOptions() -> Options {
        var o = Options()
        o.blobThreshold = 4 << 10
        o.blobFileSize = 16 << 20
        o.spaceReserve = 16 << 20
        return o
    }

    /// Bytes the directory's files take: for each file the larger of its length and its
    /// allocated blocks (WAL space is allocated ahead of the data).
    static func diskUse(_ dir: String) -> UInt64 {
        var total: UInt64 = 0
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
            var st = stat()
            guard stat("\(dir)/\(name)", &st) == 0 else { continue }
            total += max(UInt64(st.st_size), UInt64(st.st_blocks) * 512)
        }
        return total
    }

    /// The fixed allowance of the bound `disk <= 2 x (live + hot set) + allowance`, for a single
    /// writer:
    /// - blob files of memtable generations: each memtable's file holds the values it hides
    ///   (frozen once they reach `memtableGarbageTrigger`, so at most that plus one value) and
    ///   is collected before the memtable leaves the immutable queue, so there are at most
    ///   `maxImmutableMemtables + 1` of them (the live values in them are counted in the 2 x);
    /// - the file garbage collection moves survivors to, sealed once `blobFileSize / 32` of it
    ///   is garbage (`BlobStore.relocationSealMinimumBytes`);
    /// - the WAL of each memtable (allocated `AppendMapping.chunk` at a time);
    /// - tables, MANIFEST and CURRENT: references and edits, a few hundred KiB here;
    /// - the space reserve (`Options.spaceReserve`, 8 MiB).
    static func allowance(_ o: Options, largestValue: Int) -> UInt64 {
        let generations = UInt64(o.maxImmutableMemtables + 1)
        return generations * UInt64(o.memtableGarbageTrigger + largestValue) + UInt64(o.blobFileSize / 32)
            + generations * UInt64(AppendMapping.chunk) + (4 << 20) + UInt64(o.spaceReserve)
    }

    /// A value that differs with `round` in its first and last bytes (so every overwrite
    /// writes new bytes, and a stale read shows).
    static func value(_ key: Int, _ round: Int, size: Int) -> [UInt8] {
        var v = [UInt8](repeating: UInt8(truncatingIfNeeded: key &* 31 &+ round), count: size)
        withUnsafeBytes(of: UInt64(bitPattern: Int64(round)).littleEndian) { r in
            for i in 0..<8 {
                v[i] = r[i]
                v[size - 8 + i] = r[i]
            }
        }
        return v
    }

    static func key(_ i: Int) -> [UInt8] { bytes("file/chunk-\(i)") }

    /// Waits until `condition` holds (background work finishing), up to `seconds`.
    static func eventually(seconds: Double = 20, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            usleep(50_000)
        }
        return try condition()
    }

    /// Every blob record byte written is live, garbage or in a deleted file: live + garbage +
    /// reclaimed (less the deleted files' headers) = written + relocated. Holds once no
    /// memtable refers to blob bytes (they are linked at the flush) and no job is running.
    static func accountsBalance(_ s: Statistics) -> Bool {
        s.blobLiveBytes + s.blobGarbageBytes + s.blobBytesReclaimed - UInt64(BlobFormat.headerSize) * s.blobFilesDeleted
            == s.blobBytesWritten + s.blobBytesRelocated
    }

    /// The bound for `live` bytes of which `hot` are overwritten again and again.
    static func bound(_ o: Options, live: UInt64, hot: UInt64, largestValue: Int) -> UInt64 {
        2 * (live + hot) + allowance(o, largestValue: largestValue)
    }

    /// Overwrites `keys` keys at random (one key: always the same), checking the bound every
    /// 100 puts; returns the largest disk use seen and the last round written to each key.
    static func overwrite(
        _ db: SliceDB, dir: String, keys: Int, valueSize: Int, puts: Int, seed: UInt64
    ) throws -> (peak: UInt64, rounds: [Int]) {
        let live = UInt64(keys * valueSize)
        let bound = bound(db.options, live: live, hot: live, largestValue: valueSize)
        var rng = SeededRandom(seed: seed)
        var rounds = Array(repeating: -1, count: keys)
        var peak: UInt64 = 0
        for round in 0..<puts {
            let k = keys == 1 ? 0 : Int(rng.next() % UInt64(keys))
            try db.put(key(k), value(k, round, size: valueSize))
            rounds[k] = round
            if (round + 1) % 100 == 0 {
                let used = diskUse(dir)
                peak = max(peak, used)
                #expect(
                    used <= bound,
                    "after \(round + 1) puts (seed \(seed)): \(used >> 10) KiB on disk, bound \(bound >> 10) KiB")
            }
        }
        return (peak, rounds)
    }

    // MARK: Overwrites

    @Test func overwritingOneLargeValueKeepsSpaceBounded() throws {
        let dir = TempDir("slice-reclaim")
        let valueSize = 256 << 10
        let (peak, rounds): (UInt64, [Int])
        do {
            let db = try SliceDB(path: dir.path, options: SpaceReclaimTests.mountOptions())
            (peak, rounds) = try SpaceReclaimTests.overwrite(
                db, dir: dir.path, keys: 1, valueSize: valueSize, puts: 2_000, seed: 1)
            #expect(try db.get(SpaceReclaimTests.key(0)) == SpaceReclaimTests.value(0, rounds[0], size: valueSize))
            let s = db.stats()
            #expect(s.blobGarbageFlushes > 0)
            #expect(s.blobGCCompactions > 0)
            #expect(s.blobFilesDeleted > 0)
            // Nearly everything written has been given back: at most the bound is left.
            #expect(s.blobBytesReclaimed + peak >= s.blobBytesWritten)
            try db.flush()
            #expect(SpaceReclaimTests.eventually { SpaceReclaimTests.accountsBalance(db.stats()) })
            let settled = db.stats()
            #expect(settled.blobGarbageBytes + settled.blobBytesReclaimed > 0)
            #expect(settled.blobLiveBytes >= UInt64(valueSize))
            #expect(settled.prometheusText.contains("slice_blob_reclaimed_bytes_total \(settled.blobBytesReclaimed)"))
            try db.close()
        }
        let db = try SliceDB(path: dir.path, options: SpaceReclaimTests.mountOptions())
        _ = try db.check()
        #expect(try db.get(SpaceReclaimTests.key(0)) == SpaceReclaimTests.value(0, rounds[0], size: valueSize))
        try db.close()
    }

    @Test func randomOverwritesOfAFewKeysKeepSpaceBounded() throws {
        let dir = TempDir("slice-reclaim")
        let valueSize = 64 << 10
        let keys = 32
        let rounds: [Int]
        do {
            let db = try SliceDB(path: dir.path, options: SpaceReclaimTests.mountOptions())
            (_, rounds) = try SpaceReclaimTests.overwrite(
                db, dir: dir.path, keys: keys, valueSize: valueSize, puts: 20_000, seed: 2)
            for k in 0..<keys {
                #expect(try db.get(SpaceReclaimTests.key(k)) == SpaceReclaimTests.value(k, rounds[k], size: valueSize))
            }
            try db.close()
        }
        let db = try SliceDB(path: dir.path, options: SpaceReclaimTests.mountOptions())
        let report = try db.check()
        #expect(report.blobValues >= UInt64(keys))
        for k in 0..<keys {
            #expect(try db.get(SpaceReclaimTests.key(k)) == SpaceReclaimTests.value(k, rounds[k], size: valueSize))
        }
        try db.close()
    }

    // MARK: Renames

    /// A rename reads a value's reference (`storedValue`) and puts it under another key; a
    /// garbage collection running in between may move the value and delete its file. The
    /// rename must still land (the value is copied then), and no reference may be left to a
    /// deleted file: found by the model test (a copy pinned while the compaction that deleted
    /// its file was writing the MANIFEST, and renames refused after a relocation).
    @Test func renamesRacingGarbageCollectionLoseNothing() throws {
        let dir = TempDir("slice-reclaim")
        var options = tinyOptions()
        options.blobThreshold = 1000
        options.blobFileSize = 64 << 10
        let keys = 40
        let valueSize = 3000
        func name(_ i: Int, _ side: Int) -> [UInt8] { bytes("r/\(i)/\(side)") }
        do {
            let db = try SliceDB(path: dir.path, options: options)
            for i in 0..<keys { try db.put(name(i, 0), SpaceReclaimTests.value(i, 0, size: valueSize)) }
            let stop = Atomic<Bool>(false)
            // Churn: overwrites that make garbage, flushes and compactions (with GC).
            let churn = Thread {
                var round = 1
                while !stop.load(ordering: .relaxed) {
                    try? db.put(bytes("o/\(round % 7)"), SpaceReclaimTests.value(round, round, size: valueSize))
                    if round % 50 == 0 { try? db.compact() }
                    round += 1
                }
            }
            churn.start()
            var side = Array(repeating: 0, count: keys)
            var failures: [String] = []
            for step in 0..<3000 {
                let i = step % keys
                let from = name(i, side[i])
                let to = name(i, 1 - side[i])
                do {
                    guard let stored = try db.storedValue(from) else {
                        failures.append("step \(step): \(String(decoding: from, as: UTF8.self)) is missing")
                        break
                    }
                    var batch = WriteBatch()
                    batch.put(to, stored)
                    batch.delete(from)
                    try db.write(batch)
                    side[i] = 1 - side[i]
                } catch {
                    failures.append("step \(step): \(error)")
                    break
                }
            }
            stop.store(true, ordering: .relaxed)
            while !churn.isFinished { usleep(1000) }
            #expect(failures.isEmpty, "\(failures)")
            #expect(db.stats().blobGCCompactions > 0)
            for i in 0..<keys {
                #expect(try db.get(name(i, side[i])) == SpaceReclaimTests.value(i, 0, size: valueSize))
                #expect(try db.get(name(i, 1 - side[i])) == nil)
            }
            try db.close()
            let again = try SliceDB(path: dir.path, options: options)
            _ = try again.check()
            for i in 0..<keys {
                #expect(try again.get(name(i, side[i])) == SpaceReclaimTests.value(i, 0, size: valueSize))
            }
            try again.close()
        }
    }

    // MARK: Deletions

    @Test func deletingEverythingGivesTheSpaceBack() throws {
        let dir = TempDir("slice-reclaim")
        let valueSize = 256 << 10
        let count = 160  // 40 MiB, in the one blob file still open for appends
        let options = SpaceReclaimTests.mountOptions()
        do {
            let db = try SliceDB(path: dir.path, options: options)
            for i in 0..<count { try db.put(SpaceReclaimTests.key(i), SpaceReclaimTests.value(i, 0, size: valueSize)) }
            // In the tables, so the deletions hide values no memtable holds.
            try db.flush()
            #expect(SpaceReclaimTests.diskUse(dir.path) >= UInt64(count * valueSize))
            for i in 0..<count { try db.delete(SpaceReclaimTests.key(i)) }
            // An idle flush, a compaction of the deletions and the sealing of the file they
            // emptied: what is left is a WAL, a table or two, the MANIFEST and the space reserve.
            let residue = UInt64(2 * AppendMapping.chunk + (1 << 20) + options.spaceReserve)
            let gone = SpaceReclaimTests.eventually { SpaceReclaimTests.diskUse(dir.path) <= residue }
            let s = db.stats()
            #expect(gone, "\(SpaceReclaimTests.diskUse(dir.path) >> 10) KiB left; \(s.summary)")
            #expect(s.idleFlushes > 0)
            #expect(s.tombstoneCompactions > 0)
            #expect(s.blobBytesReclaimed >= UInt64(count * valueSize))
            #expect(try allEntries(db).isEmpty)
            try db.close()
        }
        let db = try SliceDB(path: dir.path, options: options)
        _ = try db.check()
        #expect(try allEntries(db).isEmpty)
        try db.close()
    }

    // MARK: Snapshots

    @Test func aSnapshotKeepsWhatItSeesWhileTheRestIsReclaimed() throws {
        let dir = TempDir("slice-reclaim")
        let valueSize = 256 << 10
        let options = SpaceReclaimTests.mountOptions()
        let key = SpaceReclaimTests.key(0)
        let first = SpaceReclaimTests.value(0, -1, size: valueSize)
        do {
            let db = try SliceDB(path: dir.path, options: options)
            try db.put(key, first)
            var snapshot: Snapshot? = try db.snapshot()
            // Versions the snapshot cannot see go as usual: the bound holds, plus what it sees.
            let (_, rounds) = try SpaceReclaimTests.overwrite(
                db, dir: dir.path, keys: 1, valueSize: valueSize, puts: 600, seed: 3)
            #expect(try db.get(key, snapshot: snapshot) == first)
            #expect(try allEntries(db, snapshot: snapshot).map(\.value) == [first])
            #expect(try db.get(key) == SpaceReclaimTests.value(0, rounds[0], size: valueSize))
            #expect(db.stats().blobFilesDeleted > 0)
            snapshot = nil
            // Once it is gone, so is the first value's file (after a few more overwrites).
            for round in 600..<800 { try db.put(key, SpaceReclaimTests.value(0, round, size: valueSize)) }
            let live = UInt64(valueSize)
            let bound = SpaceReclaimTests.bound(options, live: live, hot: live, largestValue: valueSize)
            #expect(SpaceReclaimTests.eventually { SpaceReclaimTests.diskUse(dir.path) <= bound })
            try db.close()
        }
        let db = try SliceDB(path: dir.path, options: options)
        _ = try db.check()
        #expect(try db.get(key) == SpaceReclaimTests.value(0, 799, size: valueSize))
        try db.close()
    }

    /// Snapshots taken at many points each keep reading their own version of every key while
    /// flushes and compactions drop the versions between them (`SnapshotList`), small values
    /// and large alike; checked against a model after every round.
    @Test(arguments: [100, 8 << 10]) func everySnapshotReadsItsOwnVersions(valueSize: Int) throws {
        let dir = TempDir("slice-reclaim")
        var options = tinyOptions()
        options.blobThreshold = 4 << 10
        options.blobFileSize = 1 << 16
        options.memtableGarbageTrigger = 1 << 16
        let db = try SliceDB(path: dir.path, options: options)
        let seed = UInt64.random(in: 0..<1_000_000)
        var rng = SeededRandom(seed: seed)
        var model: [Int: Int] = [:]
        var held: [(Snapshot, [Int: Int])] = []
        for round in 0..<1_500 {
            let k = Int(rng.next() % 8)
            if rng.next() % 5 == 0 {
                try db.delete(SpaceReclaimTests.key(k))
                model[k] = nil
            } else {
                try db.put(SpaceReclaimTests.key(k), SpaceReclaimTests.value(k, round, size: valueSize))
                model[k] = round
            }
            if rng.next() % 100 == 0 { held.append((try db.snapshot(), model)) }
            if held.count > 6 { held.remove(at: Int(rng.next() % UInt64(held.count))) }
            if round % 150 == 149 {
                for (snapshot, expected) in held + [(nil, model)] as [(Snapshot?, [Int: Int])] {
                    for k in 0..<8 {
                        let want = expected[k].map { SpaceReclaimTests.value(k, $0, size: valueSize) }
                        #expect(
                            try db.get(SpaceReclaimTests.key(k), snapshot: snapshot) == want,
                            "seed \(seed), round \(round), key \(k)")
                    }
                }
            }
        }
        #expect(db.stats().compactions > 0)
        try db.close()
        let reopened = try SliceDB(path: dir.path, options: options)
        _ = try reopened.check()
        for k in 0..<8 {
            #expect(
                try reopened.get(SpaceReclaimTests.key(k))
                    == model[k].map { SpaceReclaimTests.value(k, $0, size: valueSize) })
        }
        try reopened.close()
    }
}

/// A key-value store that filled its disk: deletions still work (the space reserve), the
/// store reopens on the full disk, and the space the deletions free takes writes again.
@Suite(.serialized) struct FullDiskTests {
    @Test func deletesAndReopenWorkOnAFullDisk() throws {
        guard getuid() == 0 else { return }  // mounting a tmpfs needs root (CI runs as root)
        let dir = TempDir("slice-fulldisk")
        let small = dir.path + "/small"
        try FileManager.default.createDirectory(atPath: small, withIntermediateDirectories: true)
        let mounted = Process()
        mounted.executableURL = URL(fileURLWithPath: "/bin/mount")
        mounted.arguments = ["-t", "tmpfs", "-o", "size=40m", "tmpfs", small]
        try mounted.run()
        mounted.waitUntilExit()
        #expect(mounted.terminationStatus == 0)
        defer { _ = Glibc.umount2(small, Int32(MNT_DETACH)) }
        var options = SpaceReclaimTests.mountOptions()
        options.memtableSize = 2 << 20
        options.blobFileSize = 4 << 20
        options.spaceReserve = 4 << 20
        let store = small + "/store"
        var db: SliceDB? = try SliceDB(path: store, options: options)
        #expect(db!.stats().spaceReserveShortfall == 0 && db!.spaceReserveShortfall == 0)
        let value = [UInt8](repeating: 0x42, count: 256 << 10)
        var stored = 0
        var full = false
        while !full && stored < 1000 {
            do {
                try db!.put(SpaceReclaimTests.key(stored), value)
                stored += 1
            } catch let e as SliceError where e.code == .noSpace {
                full = true
            }
        }
        #expect(full && stored > 10)
        // Whatever is left, taken from outside.
        let filler = small + "/filler"
        _ = FileManager.default.createFile(atPath: filler, contents: nil)
        if let h = FileHandle(forWritingAtPath: filler) {
            let block = Data(count: 64 << 10)
            while (try? h.write(contentsOf: block)) != nil {}
            try? h.close()
        }
        for i in 0..<stored where i % 2 == 0 { try db!.delete(SpaceReclaimTests.key(i)) }
        // The idle flush of the deletions needs a new WAL: the reserve gives the room.
        #expect(SpaceReclaimTests.eventually { db!.stats().spaceReserveReleases > 0 })
        try db!.close()
        db = nil
        db = try SliceDB(path: store, options: options)
        for i in 0..<stored {
            #expect(try db!.get(SpaceReclaimTests.key(i)) == (i % 2 == 0 ? nil : value), "key \(i)")
        }
        // The space the deletions freed comes back and takes new values (the filler stays).
        let back = SpaceReclaimTests.eventually(seconds: 30) {
            (try? db!.put(bytes("after"), value)) != nil
        }
        #expect(back, "\(db!.stats().summary)")
        _ = try db!.check()
        try db!.close()
    }
}
