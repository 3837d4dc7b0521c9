import Foundation
import Testing

@testable import SliceFS
@testable import SliceKV

#if canImport(Glibc)
    import Glibc
#endif

/// Disk use through the mount, the workloads that used to grow it without bound: a file
/// rewritten thousands of times, a log appended to line by line, random writes into one file,
/// all without any `.compact`; and a disk filled to the last byte, then `rm` and a remount.
///
/// The bound checked at every sample: the data directory holds at most twice the live file
/// bytes plus `allowance`, which is what the engine may hold besides the live data (see
/// `allowance`).
@Suite(.serialized) struct MountSpaceTests {
    /// What the store may hold besides twice the live data, for the options `slice mount`
    /// opens with (engine defaults, 64 MiB blob files):
    /// - each memtable generation (the active one and `maxImmutableMemtables` frozen ones) has
    ///   its own blob file holding the chunks it overwrote, frozen once they reach
    ///   `memtableGarbageTrigger`, so at most that plus one 64 KiB chunk each;
    /// - the file garbage collection moves surviving chunks to, sealed at `blobFileSize / 32`;
    /// - a WAL per generation, allocated 4 MiB at a time;
    /// - tables, MANIFEST, CURRENT and `mount.log`: 4 MiB;
    /// - the space reserve (`Options.spaceReserve`, one blob file's size for a mount).
    static var allowance: UInt64 {
        let o = Options()
        let generations = UInt64(o.maxImmutableMemtables + 1)
        return generations * UInt64(o.memtableGarbageTrigger + FileContent.chunkSize)
            + UInt64(SliceFileSystem.defaultBlobFileSize / 32) + generations * UInt64(AppendMapping.chunk) + (4 << 20)
            + UInt64(SliceFileSystem.defaultBlobFileSize)
    }

    /// Bytes the directory takes on the disk (`du`: allocated blocks, preallocated WAL space
    /// included).
    static func diskUse(_ dir: String) -> UInt64 {
        UInt64((try? sh("du -sB1 '\(dir)' | cut -f1"))?.out.trimmingCharacters(in: .whitespacesAndNewlines) ?? "")
            ?? .max
    }

    /// Checks the bound for `live` bytes now; returns the use seen.
    @discardableResult
    static func checkBound(_ m: MountedStore, live: UInt64, _ context: String) -> UInt64 {
        let used = diskUse(m.data)
        let bound = 2 * live + allowance
        #expect(used <= bound, "\(context): \(used >> 10) KiB on disk, bound \(bound >> 10) KiB")
        return used
    }

    static func pattern(_ round: Int, count: Int) -> [UInt8] {
        var v = [UInt8](repeating: UInt8(truncatingIfNeeded: round &* 7 &+ 1), count: count)
        withUnsafeBytes(of: UInt64(round).littleEndian) { r in
            for i in 0..<8 {
                v[i] = r[i]
                v[count - 8 + i] = r[i]
            }
        }
        return v
    }

    /// `cp` over the same 256 KiB file 2,000 times: open with O_TRUNC, write, close.
    @Test func rewritingOneFileTwoThousandTimes() throws {
        let m = try MountedStore()
        defer { try? m.unmount() }
        let size = 256 << 10
        var peak: UInt64 = 0
        for round in 0..<2000 {
            let data = MountSpaceTests.pattern(round, count: size)
            #expect(writeFile(m.path("file"), data) == 0)
            if round % 50 == 49 {
                peak = max(peak, MountSpaceTests.checkBound(m, live: UInt64(size), "after \(round + 1) rewrites"))
            }
        }
        #expect(readFile(m.path("file")) == MountSpaceTests.pattern(1999, count: size))
        print("rewrites of 256 KiB x 2000: peak \(peak >> 10) KiB on disk")
        try m.unmount()
        try m.mount()
        #expect(readFile(m.path("file")) == MountSpaceTests.pattern(1999, count: size))
    }

    /// A log that gets one line at a time, each append its own open, write and close.
    @Test(arguments: [false, true]) func appendingTwoThousandLinesToALog(writeBack: Bool) throws {
        let m = try MountedStore(options: writeBack ? ["writeback"] : [])
        defer { try? m.unmount() }
        var expected: [UInt8] = []
        var peak: UInt64 = 0
        func blobBytesWritten() -> Int {
            let json = try? JSONSerialization.jsonObject(with: Data(readFile(m.path(".stats.json")) ?? []))
            return (json as? [String: Any])?["blobBytesWritten"] as? Int ?? 0
        }
        let blobBefore = blobBytesWritten()
        for i in 0..<2000 {
            let line = Array("\(i): the quick brown fox jumps over the lazy dog \(i * 7919)\n".utf8)
            let fd = open(m.path("app.log"), O_WRONLY | O_CREAT | O_APPEND, 0o644)
            #expect(fd >= 0)
            #expect(line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == line.count)
            #expect(close(fd) == 0)
            expected += line
            if i % 50 == 49 {
                peak = max(peak, MountSpaceTests.checkBound(m, live: UInt64(expected.count), "after \(i + 1) appends"))
            }
        }
        #expect(readFile(m.path("app.log")) == expected)
        // With -o writeback, closes that come in a burst are committed together (`WriteBack`):
        // the log's last chunk is rewritten about once a second, not once per line (~500x).
        #expect(try sh("echo go > '\(m.path(".sync"))'").status == 0)
        let written = blobBytesWritten() - blobBefore
        if writeBack {
            #expect(written <= 8 * expected.count, "\(written) blob bytes written for a \(expected.count)-byte log")
        }
        print(
            "appends of 2000 lines (\(expected.count) bytes): peak \(peak >> 10) KiB on disk, \(written) blob bytes written"
        )
    }

    /// 100,000 writes of 4 KiB at random 4 KiB-aligned offsets of a 2 MiB file, through one
    /// descriptor, with an fsync every 1,000; compared with the same writes in memory.
    @Test func hundredThousandRandomWritesInATwoMiBFile() throws {
        let m = try MountedStore()
        defer { try? m.unmount() }
        let size = 2 << 20
        var model = [UInt8](repeating: 0, count: size)
        let fd = open(m.path("random.dat"), O_RDWR | O_CREAT, 0o644)
        #expect(fd >= 0)
        #expect(ftruncate(fd, off_t(size)) == 0)
        var rng = SeededRandom(seed: 11)
        var peak: UInt64 = 0
        var block = [UInt8](repeating: 0, count: 4096)
        for i in 0..<100_000 {
            let at = Int(rng.next() % UInt64(size / 4096)) * 4096
            let fill = UInt8(truncatingIfNeeded: i)
            for j in stride(from: 0, to: 4096, by: 512) { block[j] = fill &+ UInt8(truncatingIfNeeded: j >> 9) }
            block[4095] = UInt8(truncatingIfNeeded: i >> 8)
            let n = block.withUnsafeBytes { pwrite(fd, $0.baseAddress, 4096, off_t(at)) }
            #expect(n == 4096)
            model.replaceSubrange(at..<at + 4096, with: block)
            if i % 1000 == 999 {
                #expect(fsync(fd) == 0)
                peak = max(peak, MountSpaceTests.checkBound(m, live: UInt64(size), "after \(i + 1) random writes"))
            }
        }
        #expect(close(fd) == 0)
        #expect(readFile(m.path("random.dat")) == model)
        print("random writes 100k x 4 KiB in 2 MiB: peak \(peak >> 10) KiB on disk")
        try m.unmount()
        try m.mount()
        #expect(readFile(m.path("random.dat")) == model)
    }

    /// The store's own disk filled to 100% through the mount: writes answer ENOSPC, and then
    /// `rm`, `rmdir` and a remount (on the still-full disk) work, and the space `rm` frees
    /// takes writes again.
    @Test func aFullDiskStillTakesRmAndRemount() throws {
        let m = try MountedStore()
        let (disk, store) = try mountOnSmallDisk(m, mib: 48)
        defer { withExtendedLifetime(disk) {} }  // unmounted after the store's mount
        let small = disk.path
        var unmounted = false
        defer { if !unmounted { _ = try? run(sliceExecutable, ["umount", m.mnt]) } }
        #expect(mkdir(m.path("dir"), 0o755) == 0)
        #expect(
            String(decoding: readFile(m.path(".stats")) ?? [], as: UTF8.self).contains(
                "slice_space_reserve_shortfall_bytes 0\n"))
        var written: [String: [UInt8]] = [:]
        var full = false
        for i in 0..<200 where !full {
            let name = "dir/f\(i)"
            let data = MountSpaceTests.pattern(i, count: 1 << 20)
            let fd = open(m.path(name), O_WRONLY | O_CREAT, 0o644)
            guard fd >= 0 else {
                #expect(errno == ENOSPC, "open: errno \(errno)")
                full = true
                break
            }
            let w = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            let e = errno
            let s = w == data.count ? fsync(fd) : -1
            let e2 = errno
            close(fd)
            if w == data.count && s == 0 {
                written[name] = data
            } else {
                #expect((w < 0 ? e : e2) == ENOSPC, "errno \(w < 0 ? e : e2)")
                full = true
            }
        }
        #expect(full, "the disk never filled")
        // The last bytes too, from outside the store (again while the daemon's background work,
        // a table written or a blob file collected, frees a few blocks meanwhile).
        _ = try sh(
            "for i in 1 2 3 4 5; do cat /dev/zero >> '\(small)/filler' 2>/dev/null; "
                + "[ \"$(df --output=avail -B1 '\(small)' | tail -1 | tr -d ' ')\" = 0 ] && break; sleep 0.2; done")
        #expect(
            try sh("df --output=avail -B1 '\(small)' | tail -1").out.trimmingCharacters(in: .whitespacesAndNewlines)
                == "0")
        // rm of files and of the directory they were in, on the full disk.
        let names = written.keys.sorted()
        #expect(names.count >= 4)
        let removed = Array(names.prefix(names.count / 2))
        for name in removed {
            #expect(unlink(m.path(name)) == 0, "rm \(name) on a full disk: errno \(errno)")
            written[name] = nil
        }
        #expect(mkdir(m.path("emptydir"), 0o755) == 0 || errno == ENOSPC)
        if access(m.path("emptydir"), F_OK) == 0 { #expect(rmdir(m.path("emptydir")) == 0, "errno \(errno)") }
        // Unmount and mount again while the disk is still full.
        #expect(try run(sliceExecutable, ["umount", m.mnt]).status == 0)
        let again = try run(sliceExecutable, ["mount", store, m.mnt, "-o", "memtable_mb=4"])
        #expect(again.status == 0, "remount on a full disk: \(again.err)")
        for (name, data) in written { #expect(readFile(m.path(name)) == data, "\(name)") }
        for name in removed { #expect(access(m.path(name), F_OK) != 0) }
        // What the removals freed is given back: with the filler gone, writes work again.
        #expect(unlink(small + "/filler") == 0)
        let after = MountSpaceTests.pattern(999, count: 1 << 20)
        var wroteAfter = false
        for _ in 0..<300 where !wroteAfter {  // up to 30 s: the engine reclaims in the background
            wroteAfter = writeFile(m.path("dir/after"), after) == 0 && readFile(m.path("dir/after")) == after
            if !wroteAfter { usleep(100_000) }
        }
        #expect(wroteAfter)
        #expect(try run(sliceExecutable, ["umount", m.mnt]).status == 0)
        unmounted = true
        let db = try SliceDB(path: store)
        _ = try db.check()
        try db.close()
    }
}
