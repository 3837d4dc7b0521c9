import CFuse
import Foundation
import Testing

@testable import SliceFS
@testable import SliceKV

/// Real mounts through the kernel: each test mounts a fresh store and uses ordinary system
/// calls or shell tools on it.
@Suite(.serialized) struct MountTests {
    @Test func filesReadWriteAppendTruncate() throws {
        let m = try MountedStore()
        let f = m.path("hello.txt")
        #expect(writeFile(f, Array("hello".utf8)) == 0)
        #expect(readFile(f) == Array("hello".utf8))
        // Append, write at an offset, sparse extension, truncate down and up.
        try sh("echo ' world' >> '\(f)'")
        #expect(readFile(f) == Array("hello world\n".utf8))
        let fd = open(f, O_RDWR)
        #expect(fd >= 0)
        #expect(pwrite(fd, "J", 1, 0) == 1)
        // A write is visible to other readers at once, before close.
        #expect(readFile(f) == Array("Jello world\n".utf8))
        #expect(pwrite(fd, "!", 1, 20) == 1)
        var st = stat()
        #expect(fstat(fd, &st) == 0)
        #expect(st.st_size == 21)
        #expect(ftruncate(fd, 5) == 0)
        #expect(fsync(fd) == 0)
        close(fd)
        #expect(readFile(f) == Array("Jello".utf8))
        #expect(truncate(f, 8) == 0)
        #expect(readFile(f) == Array("Jello".utf8) + [0, 0, 0])
        // O_TRUNC.
        let t = open(f, O_WRONLY | O_TRUNC)
        #expect(t >= 0)
        close(t)
        #expect(readFile(f) == [])
        // Data reaches the engine: visible through the API after unmount.
        #expect(writeFile(m.path("dir-less.bin"), [1, 2, 3, 0, 255]) == 0)
        try m.unmount()
        let db = try SliceDB(path: m.data)
        #expect(try db.get("dir-less.bin") == [1, 2, 3, 0, 255])
        #expect(try db.get("hello.txt") == [])
    }

    @Test func errnosForBadRequests() throws {
        let m = try MountedStore(options: ["max_file_mb=1"])
        #expect(errnoOf(open(m.path("missing"), O_RDONLY)) == ENOENT)
        let long = String(repeating: "n", count: 256)
        #expect(errnoOf(open(m.path(long), O_WRONLY | O_CREAT, 0o644)) == ENAMETOOLONG)
        let ok255 = String(repeating: "n", count: 255)
        #expect(writeFile(m.path(ok255), [1]) == 0)
        #expect(mkdir(m.path("d"), 0o755) == 0)
        #expect(errnoOf(mkdir(m.path("d"), 0o755)) == EEXIST)
        #expect(errnoOf(open(m.path("d"), O_WRONLY)) == EISDIR)
        #expect(errnoOf(unlink(m.path("d"))) == EISDIR)
        #expect(writeFile(m.path("d/f"), [1]) == 0)
        #expect(errnoOf(rmdir(m.path("d"))) == ENOTEMPTY)
        #expect(errnoOf(rmdir(m.path("d/f"))) == ENOTDIR)
        #expect(errnoOf(mkdir(m.path("d/f/x"), 0o755)) == ENOTDIR)
        #expect(link(m.path("d/f"), m.path("hard")) == 0)
        #expect(errnoOf(link(m.path("d/f"), m.path("hard"))) == EEXIST)
        #expect(errnoOf(link(m.path("d"), m.path("dirlink"))) == EPERM)
        #expect(mknod(m.path("fifo"), S_IFIFO | 0o644, 0) == 0)
        #expect(errnoOf(mknod(m.path("fifo"), S_IFIFO | 0o644, 0)) == EEXIST)
        // Files are limited to the engine's value size (1 MiB here): EFBIG, nothing lost.
        let fd = open(m.path("big"), O_WRONLY | O_CREAT, 0o644)
        let chunk = [UInt8](repeating: 7, count: 1 << 20)
        #expect(chunk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == 1 << 20)
        #expect(errnoOf(Int32(chunk.withUnsafeBytes { write(fd, $0.baseAddress, 1) })) == EFBIG)
        close(fd)
        #expect(readFile(m.path("big")) == chunk)
        #expect(errnoOf(truncate(m.path("big"), 2 << 20)) == EFBIG)
        // Names that look like escapes but are none are keys of their own bytes, listed as
        // created.
        #expect(writeFile(m.path("%41"), [4]) == 0)
        #expect(writeFile(m.path("pct%2F"), [6]) == 0)
        #expect(readFile(m.path("%41")) == [4])
        #expect(readFile(m.path("A")) == nil)
        let names = try sh("ls '\(m.mnt)'").out.split(separator: "\n")
        #expect(names.contains("%41") && names.contains("pct%2F"))
        #expect(writeFile(m.path("50%off"), [5]) == 0)
        #expect(readFile(m.path("50%off")) == [5])
    }

    @Test func renameFilesAndDirectories() throws {
        let m = try MountedStore()
        for i in 0..<50 { #expect(writeFile(m.path("a/\(i)"), Array("v\(i)".utf8)) == ENOENT) }
        #expect(mkdir(m.path("a"), 0o755) == 0)
        #expect(mkdir(m.path("a/sub"), 0o700) == 0)
        for i in 0..<50 { #expect(writeFile(m.path("a/\(i)"), Array("v\(i)".utf8)) == 0) }
        #expect(writeFile(m.path("a/sub/deep"), Array("deep".utf8)) == 0)
        #expect(rename(m.path("a"), m.path("b")) == 0)
        #expect(access(m.path("a"), F_OK) != 0)
        for i in 0..<50 { #expect(readFile(m.path("b/\(i)")) == Array("v\(i)".utf8)) }
        #expect(readFile(m.path("b/sub/deep")) == Array("deep".utf8))
        var st = stat()
        #expect(stat(m.path("b/sub"), &st) == 0)
        #expect(st.st_mode & 0o777 == 0o700)
        // File over file replaces; errors as POSIX says.
        #expect(writeFile(m.path("x"), Array("x".utf8)) == 0)
        #expect(writeFile(m.path("y"), Array("y".utf8)) == 0)
        #expect(rename(m.path("x"), m.path("y")) == 0)
        #expect(readFile(m.path("y")) == Array("x".utf8))
        #expect(errnoOf(rename(m.path("y"), m.path("b"))) == EISDIR)
        #expect(errnoOf(rename(m.path("b"), m.path("y"))) == ENOTDIR)
        #expect(mkdir(m.path("c"), 0o755) == 0)
        #expect(writeFile(m.path("c/z"), [1]) == 0)
        #expect(errnoOf(rename(m.path("b"), m.path("c"))) == ENOTEMPTY)
        #expect(errnoOf(rename(m.path("b"), m.path("b/sub/inside"))) == EINVAL)
        #expect(mkdir(m.path("empty"), 0o755) == 0)
        #expect(rename(m.path("b"), m.path("empty")) == 0)
        #expect(readFile(m.path("empty/sub/deep")) == Array("deep".utf8))
        // Removing every entry leaves the directory in place (rm -r works).
        let r = try sh("rm -r '\(m.path("empty"))' && ls '\(m.mnt)'")
        #expect(r.status == 0, "\(r.err)")
        #expect(!r.out.contains("empty"))
    }

    /// With the mount's default blob threshold (4 KiB), file content from 4 KiB up lives in
    /// blob files and a rename moves only the reference; smaller files stay in the tree.
    @Test func smallFilesLiveInBlobFilesAndRenameByReference() throws {
        let m = try MountedStore()
        func stat(_ name: String) -> Int? {
            let json = try? JSONSerialization.jsonObject(with: Data(readFile(m.path(".stats.json")) ?? []))
            return (json as? [String: Any])?[name] as? Int
        }
        func blobValuesWritten() -> Int? { stat("blobValuesWritten") }
        var rng = SeededRandom(seed: 11)
        var contents: [String: [UInt8]] = [:]
        for i in 0..<40 {
            let size = i % 2 == 0 ? 4096 : Int.random(in: 4097...20_000, using: &rng)
            contents["f\(i)"] = (0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) }
        }
        for i in 0..<10 { contents["small\(i)"] = Array("tiny \(i)".utf8) }
        for (name, bytes) in contents { #expect(writeFile(m.path(name), bytes) == 0) }
        // A file created write-only is committed at RELEASE, which the kernel sends after
        // close has returned: the last ones may still be on their way.
        for _ in 0..<100 where blobValuesWritten() != 40 { usleep(20_000) }
        #expect(blobValuesWritten() == 40)
        #expect(mkdir(m.path("moved"), 0o755) == 0)
        for name in contents.keys { #expect(rename(m.path(name), m.path("moved/\(name)")) == 0) }
        #expect(blobValuesWritten() == 40, "a rename rewrote file content")
        for (name, bytes) in contents { #expect(readFile(m.path("moved/\(name)")) == bytes, "\(name)") }
        // Compaction keeps them where they are, and the API reads the same bytes.
        #expect(try sh("echo go > '\(m.path(".compact"))'").status == 0)
        #expect(blobValuesWritten() == 40)
        #expect(stat("blobBytesRelocated") == 0, "renamed files were rewritten")
        try m.unmount()
        do {
            let db = try SliceDB(path: m.data)
            for (name, bytes) in contents { #expect(try db.get("moved/\(name)") == bytes, "\(name)") }
            #expect(db.stats().blobFiles >= 1)
            try db.close()
        }
        // Removing them and compacting gives the space back.
        try m.mount()
        #expect(try sh("rm -r '\(m.path("moved"))' && echo go > '\(m.path(".compact"))'").status == 0)
        #expect(stat("blobLiveBytes") == 0)
        #expect(stat("blobGarbageBytes") == 0)
        let blobs = try FileManager.default.contentsOfDirectory(atPath: m.data).filter { $0.hasSuffix(".blob") }
        #expect(blobs.isEmpty, "blob files left: \(blobs)")
    }

    /// A key that is both a file and a directory: replacing its value (the `%=` entry) by a
    /// rename leaves the directory's own attributes alone.
    @Test func renameOverAKeysOwnValueKeepsItsDirectory() throws {
        let m = try MountedStore()
        try m.unmount()
        do {
            let db = try SliceDB(path: m.data)
            try db.put("both", "old")
            try db.put("both/child", "c")
            try db.close()
        }
        try m.mount()
        #expect(chmod(m.path("both"), 0o700) == 0)
        #expect(writeFile(m.path("new"), Array("new".utf8)) == 0)
        #expect(rename(m.path("new"), m.path("both/%=")) == 0)
        try m.unmount()
        try m.mount()
        #expect(readFile(m.path("both/%=")) == Array("new".utf8))
        var st = stat()
        #expect(stat(m.path("both"), &st) == 0 && st.st_mode & S_IFMT == S_IFDIR && st.st_mode & 0o7777 == 0o700)
        // Emptying it keeps the directory (its record is still there).
        #expect(unlink(m.path("both/child")) == 0)
        #expect(unlink(m.path("both/%=")) == 0)
        #expect(stat(m.path("both"), &st) == 0 && st.st_mode & 0o7777 == 0o700)
    }

    @Test func metadataPersistsAcrossRemount() throws {
        let m = try MountedStore()
        let f = m.path("meta")
        #expect(writeFile(f, [1, 2, 3]) == 0)
        #expect(chmod(f, 0o640) == 0)
        #expect(chown(f, 1234, 5678) == 0)
        try sh("touch -d '2001-02-03 04:05:06' '\(f)'")
        #expect(symlink("meta", m.path("link")) == 0)
        #expect(setxattr(f, "user.color", "blue", 4, 0) == 0)
        #expect(errnoOf(setxattr(f, "user.color", "red", 3, XATTR_CREATE_FLAG)) == EEXIST)
        #expect(errnoOf(setxattr(f, "user.none", "x", 1, XATTR_REPLACE_FLAG)) == ENODATA)
        try m.unmount()
        try m.mount()
        var st = stat()
        #expect(stat(f, &st) == 0)
        #expect(st.st_mode & 0o7777 == 0o640)
        #expect(st.st_uid == 1234 && st.st_gid == 5678)
        #expect(st.st_mtim.tv_sec == 981_173_106 - Int(TimeZone.current.secondsFromGMT()) || st.st_mtim.tv_sec > 0)
        #expect(st.st_size == 3)
        var buf = [CChar](repeating: 0, count: 64)
        #expect(readlink(m.path("link"), &buf, 63) == 4)
        #expect(readFile(m.path("link")) == [1, 2, 3])
        var value = [UInt8](repeating: 0, count: 16)
        #expect(getxattr(f, "user.color", &value, 16) == 4)
        #expect(Array(value.prefix(4)) == Array("blue".utf8))
        #expect(errnoOf(Int32(getxattr(f, "user.absent", &value, 16))) == ENODATA)
        #expect(listxattr(f, nil, 0) == 11)
        #expect(removexattr(f, "user.color") == 0)
        #expect(errnoOf(removexattr(f, "user.color")) == ENODATA)
        // statfs reports the data directory's filesystem.
        let r = try sh("df -P '\(m.mnt)' | tail -1")
        #expect(r.out.hasPrefix("slice:"))
        // The API sees exactly the file's bytes, no metadata.
        try m.unmount()
        let db = try SliceDB(path: m.data)
        #expect(try db.get("meta") == [1, 2, 3])
        #expect(try allKeys(db) == ["meta"])
    }

    func allKeys(_ db: SliceDB) throws -> [String] {
        let c = try db.scan()
        var keys: [String] = []
        while let kv = try c.next() { keys.append(kv.keyString) }
        return keys
    }

    @Test func controlFiles() throws {
        let m = try MountedStore()
        #expect(writeFile(m.path("k"), Array("v".utf8)) == 0)
        let stats = String(decoding: readFile(m.path(".stats")) ?? [], as: UTF8.self)
        #expect(stats.contains("# TYPE slice_puts_total counter"))
        #expect(stats.contains("slice_level_files{level=\"0\"}"))
        let json = try JSONSerialization.jsonObject(with: Data(readFile(m.path(".stats.json")) ?? [])) as? [String: Any]
        #expect(json?["puts"] as? Int ?? 0 >= 1)
        // The kernel's requests, by kind: the file above took a CREATE and a WRITE at least.
        #expect(stats.contains("# TYPE slice_fuse_requests_total counter"))
        #expect(stats.contains("slice_fuse_requests_total{op=\"create\"} 1"))
        let requests = json?["fuseRequests"] as? [String: Int]
        #expect(
            requests?["create"] == 1 && requests?["write"] ?? 0 >= 1 && requests?["lookup"] ?? 0 >= 1,
            "\(String(describing: requests))")
        for name in [".flush", ".compact", ".sync"] {
            let r = try sh("echo go > '\(m.path(name))' && cat '\(m.path(name))'")
            #expect(r.status == 0, "\(name): \(r.err)")
            #expect(r.out.hasPrefix("ok \(name.dropFirst())"))
        }
        let after = String(decoding: readFile(m.path(".stats")) ?? [], as: UTF8.self)
        #expect(after.contains("slice_flushes_total 1") || after.contains("slice_flushes_total 2"))
        #expect(errnoOf(unlink(m.path(".stats"))) == EPERM)
        #expect(errnoOf(chmod(m.path(".flush"), 0o777)) == EPERM)
        #expect(errnoOf(rename(m.path("k"), m.path(".stats"))) == EPERM)
        #expect(errnoOf(open(m.path(".stats"), O_WRONLY)) == EACCES)
        let listing = try sh("ls -a '\(m.mnt)'").out
        #expect(listing.contains(".stats"))
        // A user key named like a control file is reached escaped.
        try m.unmount()
        do {
            let db = try SliceDB(path: m.data)
            try db.put(".stats", "user data")
            try db.close()
        }
        try m.mount()
        #expect(readFile(m.path("%2Estats")) == Array("user data".utf8))
    }

    /// Keys written through the API (awkward bytes included) are files, and back.
    @Test func apiKeysAreFilesAndFilesAreKeys() throws {
        let m = try MountedStore()
        try m.unmount()
        var rng = SeededRandom(seed: 5)
        var keys: [[UInt8]: [UInt8]] = [:]
        do {
            let db = try SliceDB(path: m.data)
            let special: [[UInt8]] = [
                Array("/lead".utf8), Array("trail/".utf8), Array("a//b".utf8), Array("x/./y/../z".utf8),
                [0x6e, 0x00, 0x6c], Array("both".utf8), Array("both/child".utf8), Array(".stats".utf8),
                [UInt8](repeating: 0x71, count: 400), Array("%41".utf8), Array("50%off".utf8),
            ]
            for k in special { keys[k] = Array("value of \(k)".utf8) }
            for _ in 0..<200 {
                let n = Int.random(in: 1...20, using: &rng)
                let k: [UInt8] = (0..<n).map { _ in
                    [0x2f, 0x2e, 0x25, 0x00, 0x61, 0x62][Int.random(in: 0..<6, using: &rng)]
                }
                keys[k] = (0..<Int.random(in: 0...100, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            }
            for (k, v) in keys { try db.put(k, v) }
            try db.close()
        }
        try m.mount()
        // Each key's file (or its %= entry when it is also a directory) holds its value.
        var reachable = 0
        for (k, v) in keys {
            let path = m.mnt + String(decoding: PathMapping.path(forKey: k), as: UTF8.self)
            var st = stat()
            guard stat(path, &st) == 0 else {
                Issue.record("no file for key \(k) at \(path)")
                continue
            }
            let file = st.st_mode & S_IFMT == S_IFDIR ? path + "/%=" : path
            #expect(readFile(file) == v, "key \(k)")
            reachable += 1
        }
        #expect(reachable == keys.count)
        // find(1) sees as many files as there are keys.
        let control = PathMapping.controlNames.map { "! -path '\(m.mnt)/\(String(decoding: $0, as: UTF8.self))'" }
            .joined(separator: " ")
        let found = try sh("find '\(m.mnt)' -type f \(control) | wc -l")
        #expect(Int(found.out.trimmingCharacters(in: .whitespacesAndNewlines)) == keys.count)
        // Files created through the mount are keys.
        #expect(writeFile(m.path("made-here"), [9]) == 0)
        try m.unmount()
        let db = try SliceDB(path: m.data)
        #expect(try db.get("made-here") == [9])
    }

    @Test func copyTreeInAndOutWithCpRsyncTar() throws {
        let m = try MountedStore()
        let src = m.root + "/src"
        // 2,000 files: nested directories, empty files, binary content, symlinks, one 50 MiB file.
        let make = """
            set -e
            mkdir -p '\(src)'
            cd '\(src)'
            for d in $(seq 0 40); do mkdir -p "d$d/sub"; for f in $(seq 0 48); do printf "file $d $f" > "d$d/f$f"; done; done
            for f in $(seq 0 9); do : > "empty$f"; head -c 3000 /dev/urandom > "d$f/sub/bin"; ln -s "../../d0/f$f" "d1/sub/link$f"; done
            head -c 52428800 /dev/urandom > big.bin
            chmod 600 d0/f0; chmod 755 d1/f1
            find . -type f | wc -l
            """
        let made = try sh(make)
        #expect(made.status == 0, "\(made.err)")
        #expect(Int(made.out.trimmingCharacters(in: .whitespacesAndNewlines))! >= 1000)
        let total = try sh("find '\(src)' | wc -l").out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(Int(total)! >= 2000)
        let checks = """
            set -e
            cp -a '\(src)' '\(m.mnt)/cp'
            diff -r '\(src)' '\(m.mnt)/cp'
            cp -a '\(m.mnt)/cp' '\(m.root)/back'
            diff -r '\(src)' '\(m.root)/back'
            (cd '\(src)' && find . -printf '%p %m %T@ %l\\n' | sort) > '\(m.root)/a.txt'
            (cd '\(m.mnt)/cp' && find . -printf '%p %m %T@ %l\\n' | sort) > '\(m.root)/b.txt'
            (cd '\(m.root)/back' && find . -printf '%p %m %T@ %l\\n' | sort) > '\(m.root)/c.txt'
            diff '\(m.root)/a.txt' '\(m.root)/b.txt'
            diff '\(m.root)/a.txt' '\(m.root)/c.txt'
            rsync -a '\(src)/' '\(m.mnt)/rs/'
            diff -r '\(src)' '\(m.mnt)/rs'
            rsync -a '\(m.mnt)/rs/' '\(m.root)/rsback/'
            diff -r '\(src)' '\(m.root)/rsback'
            tar -C '\(src)' -cf '\(m.root)/t.tar' .
            mkdir '\(m.mnt)/tar' && tar -C '\(m.mnt)/tar' -xf '\(m.root)/t.tar'
            diff -r '\(src)' '\(m.mnt)/tar'
            tar -C '\(m.mnt)/tar' -cf - . | tar -tf - | wc -l
            """
        let r = try sh(checks)
        #expect(r.status == 0, "\(r.err) \(r.out.prefix(3000))")
    }

    /// The same random operations on the mount and on a local directory: same results, same
    /// errnos, same listings after every step.
    @Test func randomOperationsMatchALocalDirectory() throws {
        try MountTests.randomOperationsMatchALocalDirectory(on: MountedStore(), steps: 500)
    }

    /// The model test's body, for any mount (`EtcdMountTests` runs it on a tree in etcd).
    static func randomOperationsMatchALocalDirectory(on m: MountedStore, steps: Int) throws {
        let local = m.root + "/local"
        try FileManager.default.createDirectory(atPath: local, withIntermediateDirectories: true)
        var rng = SeededRandom(seed: 77)
        // Names that look like escapes (and one that is: `%25`, the key `d/%`) included.
        let names = [
            "a", "b", "c", "d/e", "d/f", "g/h/i", "d", "g", "g/h", "%41", "d/%25", "g/pct%2F", "d/%2E", "%2541",
        ]
        // Every open is O_NONBLOCK: a FIFO's open would otherwise wait for the other end.
        func both(_ op: (String) -> Int32) -> (Int32, Int32) {
            errno = 0
            let a = op(m.mnt)
            let ea = a < 0 ? errno : 0
            errno = 0
            let b = op(local)
            let eb = b < 0 ? errno : 0
            return (ea, eb)
        }
        var succeeded = [Int](repeating: 0, count: 16)  // per operation, on both sides
        for step in 0..<steps {
            let n = names.randomElement(using: &rng)!
            let n2 = names.randomElement(using: &rng)!
            let data = (0..<Int.random(in: 0..<300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let offset = off_t(Int.random(in: 0..<200, using: &rng))
            let far = off_t(Int.random(in: 1..<4, using: &rng) << 20) + offset  // sparse: a hole before
            let op = Int.random(in: 0..<16, using: &rng)
            var sizes: [Int64] = []  // what an open-unlinked descriptor saw, on each side
            let (ea, eb) = both { root in
                switch op {
                case 9: return mkfifo(root + "/" + n, 0o640)
                case 10: return link(root + "/" + n, root + "/" + n2)
                case 11: return symlink("target-\(step)", root + "/" + n)
                case 12: return mknod(root + "/" + n, S_IFSOCK | 0o600, 0)
                case 14:
                    // Unlinked while open: the descriptor still reads, writes and stats its file.
                    let fd = open(root + "/" + n, O_RDWR | O_CREAT | O_NONBLOCK, 0o644)
                    if fd < 0 { return -1 }
                    defer { close(fd) }
                    if unlink(root + "/" + n) != 0 { return -1 }
                    if data.withUnsafeBytes({ pwrite(fd, $0.baseAddress, $0.count, offset) }) < 0 { return -1 }
                    var st = stat()
                    if fstat(fd, &st) != 0 { return -1 }
                    sizes.append(Int64(st.st_size) * 1000 + Int64(st.st_nlink))
                    return 0
                case 15:
                    // A shared mapping changes the file like a write.
                    let fd = open(root + "/" + n, O_RDWR | O_NONBLOCK)
                    if fd < 0 { return -1 }
                    defer { close(fd) }
                    var st = stat()
                    if fstat(fd, &st) != 0 { return -1 }
                    guard st.st_size > 0 else { return 0 }
                    guard let p = mmap(nil, Int(st.st_size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0),
                        p != MAP_FAILED
                    else { return -1 }
                    let bytes = p.assumingMemoryBound(to: UInt8.self)
                    bytes[Int(offset) % Int(st.st_size)] ^= 0x5a
                    defer { munmap(p, Int(st.st_size)) }
                    return msync(p, Int(st.st_size), MS_SYNC)
                case 0, 13:
                    // 13: sparse, far past the end.
                    let fd = open(root + "/" + n, O_WRONLY | O_CREAT | O_NONBLOCK, 0o644)
                    if fd < 0 { return -1 }
                    defer { close(fd) }
                    let at = op == 13 ? far : offset
                    return data.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, at) } < 0 ? -1 : 0
                case 1:
                    let fd = open(root + "/" + n, O_WRONLY | O_APPEND | O_NONBLOCK)
                    if fd < 0 { return -1 }
                    defer { close(fd) }
                    return data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } < 0 ? -1 : 0
                case 2: return truncate(root + "/" + n, offset)
                case 3: return rename(root + "/" + n, root + "/" + n2)
                case 4: return unlink(root + "/" + n)
                case 5: return mkdir(root + "/" + n, 0o755)
                case 6: return rmdir(root + "/" + n)
                case 7:
                    guard let d = opendir(root + "/" + n) else { return -1 }
                    closedir(d)
                    return 0
                default:
                    let fd = open(root + "/" + n, O_RDONLY | O_NONBLOCK)
                    if fd < 0 { return -1 }
                    close(fd)
                    return 0
                }
            }
            #expect(ea == eb, "step \(step): op \(op) on \(n) -> \(n2): mount errno \(ea), local errno \(eb)")
            #expect(sizes.count != 2 || sizes[0] == sizes[1], "step \(step): open-unlinked size*1000+nlink \(sizes)")
            if ea == 0 && eb == 0 { succeeded[op] += 1 }
            // Names, kinds, modes, link counts, symlink targets; sizes and contents of files.
            let listing =
                "cd '%@' && find . -printf '%%p %%y %%m %%n %%l\\n' | sort && find . -type f -printf '%%p %%s\\n' | sort && find . -type f -exec md5sum {} + | sort"
            let a = try sh(String(format: listing, m.mnt)).out.split(separator: "\n").filter { !$0.contains("./.") }
            let b = try sh(String(format: listing, local)).out.split(separator: "\n").filter { !$0.contains("./.") }
            #expect(a == b, "step \(step): op \(op) on \(n) -> \(n2)")
            if a != b { break }
        }
        // Each kind of operation succeeded some of the time (the sequence is fixed by the seed).
        print("random operations that succeeded, by kind: \(succeeded)")
        #expect(succeeded.filter { $0 > 0 }.count >= (steps >= 500 ? 14 : 12), "\(succeeded)")
    }

    /// With `-o writeback`, a file closed again soon after its last commit is committed by
    /// the write-back a moment later; meanwhile every reader sees its bytes, size and mtime, and fsync and
    /// `.sync` make it durable at once (a killed daemon keeps it).
    @Test func heldClosesAreVisibleAtOnceAndDurableOnSync() throws {
        let m = try MountedStore(options: ["writeback"])
        #expect(try sh("printf one > '\(m.path("f"))'").status == 0)
        for i in 0..<3 {
            let before = try sh("stat -c %Y.%y '\(m.path("f"))'").out
            usleep(20_000)
            #expect(try sh("printf ' more\(i)' >> '\(m.path("f"))'").status == 0)
            // Held, not committed: seen through a new open, with its new size and mtime.
            #expect(readFile(m.path("f")).map { String(decoding: $0, as: UTF8.self) }?.hasSuffix(" more\(i)") == true)
            #expect(try sh("stat -c %Y.%y '\(m.path("f"))'").out != before, "mtime after append \(i)")
        }
        let expected = "one more0 more1 more2"
        #expect(try sh("stat -c %s '\(m.path("f"))'").out == "\(expected.count)\n")
        // .sync commits what is held; then the daemon dies without a chance to write anything.
        #expect(try sh("echo go > '\(m.path(".sync"))'").status == 0)
        #expect(try sh("printf ' lost?' >> '\(m.path("f"))'").status == 0)  // may be lost: held
        let fd = open(m.path("g"), O_WRONLY | O_CREAT, 0o644)
        #expect(fd >= 0)
        #expect(write(fd, "kept", 4) == 4)
        #expect(close(fd) == 0)
        let fd2 = open(m.path("g"), O_WRONLY | O_APPEND)
        #expect(write(fd2, " too", 4) == 4)
        #expect(fsync(fd2) == 0)  // held, then fsync: committed and synced
        #expect(close(fd2) == 0)
        let pid = try #require(m.daemonPID())
        kill(pid, SIGKILL)
        for _ in 0..<100 where kill(pid, 0) == 0 { usleep(50_000) }
        try m.mount()
        let f = String(decoding: readFile(m.path("f")) ?? [], as: UTF8.self)
        #expect(f == expected || f == expected + " lost?", "\(f)")
        #expect(readFile(m.path("g")) == Array("kept too".utf8))
    }

    @Test func parallelProcessesNeverLoseWrites() throws {
        let m = try MountedStore()
        // 8 writers: each creates, appends to, renames and rereads its own files, and appends a
        // line to one shared file; every writer records what it wrote.
        let script = """
            w=$1; dir='\(m.mnt)'; end=$((SECONDS+4)); i=0
            while [ $SECONDS -lt $end ] && [ $i -lt 150 ]; do
              printf "w$w-$i" > "$dir/p$w-$i.tmp"
              printf ".more" >> "$dir/p$w-$i.tmp"
              mv "$dir/p$w-$i.tmp" "$dir/p$w-$i"
              [ "$(cat "$dir/p$w-$i")" = "w$w-$i.more" ] || { echo "bad read p$w-$i"; exit 1; }
              echo "w$w-$i" >> "$dir/shared"
              i=$((i+1))
            done
            echo $i
            """
        try script.write(toFile: m.root + "/writer.sh", atomically: true, encoding: .utf8)
        let r = try sh(
            "for w in $(seq 1 8); do bash '\(m.root)/writer.sh' $w > '\(m.root)/out'$w & done; wait; cat '\(m.root)'/out*"
        )
        #expect(r.status == 0)
        let counts = r.out.split(separator: "\n").compactMap { Int($0) }
        #expect(counts.count == 8, "\(r.out)")
        var expectedShared = 0
        for (w, n) in counts.enumerated() {
            expectedShared += n
            for i in 0..<n { #expect(readFile(m.path("p\(w + 1)-\(i)")) == Array("w\(w + 1)-\(i).more".utf8)) }
        }
        let shared = String(decoding: readFile(m.path("shared")) ?? [], as: UTF8.self).split(separator: "\n")
        #expect(shared.count == expectedShared)
    }

    @Test func ownershipAndPermissionsWithAllowOther() throws {
        let m = try MountedStore(options: ["allow_other"])
        #expect(chmod(m.root, 0o755) == 0)  // mkdtemp made it 0700: others could not reach the mount
        #expect(chmod(m.mnt, 0o777) == 0)
        let asNobody = try sh(
            "setpriv --reuid=nobody --regid=nogroup --clear-groups bash -c 'echo hi > \(m.mnt)/mine && stat -c %U:%a \(m.mnt)/mine'"
        )
        #expect(asNobody.status == 0, "\(asNobody.err)")
        #expect(asNobody.out.hasPrefix("nobody:644"))
        #expect(writeFile(m.path("rootfile"), [1]) == 0)
        #expect(chmod(m.path("rootfile"), 0o644) == 0)
        let refused = try sh(
            "setpriv --reuid=nobody --regid=nogroup --clear-groups bash -c 'echo x > \(m.mnt)/rootfile'")
        #expect(refused.status != 0)
        #expect(refused.err.contains("Permission denied"))
        #expect(readFile(m.path("rootfile")) == [1])
    }

    /// A root mount without allow_other leaves the mode checks to root's privileges (see
    /// `slice mount`): root may write a read-only file, as on ext4, but executing or
    /// `access(X_OK)` on a file without an execute bit is refused.
    @Test func rootOnlyMountChecksLikeALocalFilesystem() throws {
        let m = try MountedStore()
        let f = m.path("script.sh")
        #expect(writeFile(f, Array("#!/bin/sh\necho ran\n".utf8)) == 0)
        #expect(chmod(f, 0o444) == 0)
        #expect(access(f, R_OK | W_OK) == 0)
        #expect(errnoOf(access(f, X_OK)) == EACCES)
        let fd = open(f, O_WRONLY | O_APPEND)
        #expect(fd >= 0)
        if fd >= 0 { close(fd) }
        #expect(try sh("'\(f)'").status == 126)  // Permission denied
        #expect(chmod(f, 0o755) == 0)
        #expect(access(f, X_OK) == 0)
        #expect(try sh("'\(f)'").out == "ran\n")
        #expect(access(m.path("."), X_OK | W_OK) == 0)
        #expect(errnoOf(access(m.path("missing"), R_OK)) == ENOENT)
        #expect(errnoOf(access(m.path(".stats"), W_OK)) == EACCES)
    }

    /// Attributes of an open file are answered from its staging (no lookup in the store), so
    /// every change made while it is open must show there, and a file that loses its name
    /// (unlinked, or replaced by a rename) must not write into the file that takes the name.
    @Test func openFilesFollowChangesToTheirNames() throws {
        let m = try MountedStore()
        let f = m.path("open.txt")
        let fd = open(f, O_RDWR | O_CREAT | O_EXCL, 0o644)
        #expect(fd >= 0)
        #expect(write(fd, "abc", 3) == 3)
        var st = stat()
        #expect(stat(f, &st) == 0 && st.st_size == 3 && st.st_mode & 0o7777 == 0o644)
        #expect(chmod(f, 0o600) == 0)
        #expect(fstat(fd, &st) == 0 && st.st_mode & 0o7777 == 0o600)
        #expect(setxattr(f, "user.k", "v", 1, 0) == 0)
        var value = [CChar](repeating: 0, count: 8)
        #expect(getxattr(f, "user.k", &value, 8) == 1)
        #expect(listxattr(f, &value, 8) == 7)  // "user.k\0"
        var times = [timespec(tv_sec: 1_000_000, tv_nsec: 5), timespec(tv_sec: 2_000_000, tv_nsec: 7)]
        #expect(utimensat(AT_FDCWD, f, &times, 0) == 0)
        #expect(stat(f, &st) == 0 && st.st_mtim.tv_sec == 2_000_000 && st.st_mtim.tv_nsec == 7)
        // Renamed while open: the handle follows, the old name is gone.
        #expect(rename(f, m.path("moved.txt")) == 0)
        #expect(errnoOf(stat(f, &st)) == ENOENT)
        #expect(write(fd, "d", 1) == 1)
        #expect(close(fd) == 0)
        #expect(readFile(m.path("moved.txt")) == Array("abcd".utf8))
        #expect(stat(m.path("moved.txt"), &st) == 0 && st.st_mode & 0o7777 == 0o600 && st.st_size == 4)
        #expect(getxattr(m.path("moved.txt"), "user.k", &value, 8) == 1)

        // Unlinked while open, then a new file of the same name.
        let h = m.path("reused")
        let old = open(h, O_RDWR | O_CREAT, 0o644)
        #expect(write(old, "old", 3) == 3)
        #expect(unlink(h) == 0)
        #expect(errnoOf(stat(h, &st)) == ENOENT)
        #expect(writeFile(h, Array("new".utf8)) == 0)
        #expect(write(old, "more", 4) == 4)
        var buf = [UInt8](repeating: 0, count: 16)
        #expect(pread(old, &buf, 16, 0) == 7)
        #expect(close(old) == 0)
        #expect(readFile(h) == Array("new".utf8))

        // Replaced by a rename while open with unwritten data.
        let a = m.path("a")
        let fa = open(a, O_RDWR | O_CREAT, 0o644)
        #expect(write(fa, "A1", 2) == 2)
        #expect(writeFile(m.path("b"), Array("B".utf8)) == 0)
        #expect(rename(m.path("b"), a) == 0)
        #expect(write(fa, "zz", 2) == 2)
        #expect(close(fa) == 0)
        #expect(readFile(a) == Array("B".utf8))
        try m.unmount()
        let db = try SliceDB(path: m.data)
        #expect(try db.get("a") == Array("B".utf8))
        #expect(try db.get("reused") == Array("new".utf8))
        #expect(try db.get("moved.txt") == Array("abcd".utf8))
    }

    /// A file created write-only is written around the kernel's page cache (see
    /// `SliceFileSystem.create`): readers opened meanwhile must still see every write, and the
    /// privilege drops the kernel leaves to the filesystem then must happen as on ext4.
    @Test func writeOnlyCreatesBypassThePageCacheCoherently() throws {
        let m = try MountedStore(options: ["allow_other"])
        let f = m.path("w.txt")
        let w = open(f, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        #expect(w >= 0)
        #expect(write(w, "one", 3) == 3)
        let r = open(f, O_RDONLY)
        var buf = [UInt8](repeating: 0, count: 8)
        #expect(pread(r, &buf, 8, 0) == 3 && buf.prefix(3) == Array("one".utf8)[...])
        // A reader whose pages were cached would still read "one" here.
        #expect(pwrite(w, "two!", 4, 0) == 4)
        #expect(pread(r, &buf, 8, 0) == 4 && buf.prefix(4) == Array("two!".utf8)[...])
        var st = stat()
        #expect(fstat(r, &st) == 0 && st.st_size == 4)
        #expect(close(w) == 0)
        #expect(close(r) == 0)
        #expect(readFile(f) == Array("two!".utf8))
        // Cached again once the last uncached handle is gone.
        let a = open(f, O_WRONLY | O_APPEND)
        #expect(write(a, "+", 1) == 1)
        #expect(close(a) == 0)
        #expect(readFile(f) == Array("two!+".utf8))

        // Set-ID bits: dropped by an unprivileged writer's write, kept by root's; a file
        // capability is dropped by any write (as ext4 does through the page cache).
        #expect(chmod(m.root, 0o755) == 0)
        #expect(chmod(m.mnt, 0o777) == 0)
        let script = """
            set -e
            mkfifo -m 666 \(m.root)/ready \(m.root)/go
            setpriv --reuid=nobody --regid=nogroup --clear-groups bash -c \
              'exec 3>\(m.mnt)/byNobody; echo >\(m.root)/ready; read x <\(m.root)/go; echo data >&3' &
            read x <\(m.root)/ready
            chmod 6775 \(m.mnt)/byNobody
            echo >\(m.root)/go
            wait
            stat -c %a \(m.mnt)/byNobody
            """
        let dropped = try sh(script)
        #expect(dropped.status == 0, "\(dropped.err)")
        #expect(dropped.out == "775\n")
        let g = m.path("byRoot")
        let fd = open(g, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        #expect(fchmod(fd, 0o6755) == 0)
        // VFS_CAP_REVISION_2 with the effective flag, cap_net_raw permitted.
        let capability: [UInt8] = [1, 0, 0, 2, 0, 0x20, 0, 0] + [UInt8](repeating: 0, count: 12)
        #expect(setxattr(g, "security.capability", capability, capability.count, 0) == 0)
        #expect(getxattr(g, "security.capability", nil, 0) == 20)
        #expect(write(fd, "x", 1) == 1)
        #expect(close(fd) == 0)
        #expect(stat(g, &st) == 0 && st.st_mode & 0o7777 == 0o6755)
        #expect(errnoOf(Int32(getxattr(g, "security.capability", nil, 0))) == ENODATA)
        try m.unmount()
        try m.mount(options: ["allow_other"])
        #expect(stat(m.path("byNobody"), &st) == 0 && st.st_mode & 0o7777 == 0o775 && st.st_size == 5)
        #expect(errnoOf(Int32(getxattr(g, "security.capability", nil, 0))) == ENODATA)
        #expect(readFile(g) == Array("x".utf8))
    }

    /// A file created write-only closes without a FLUSH round trip (see
    /// `SliceFileSystem.create`): its RELEASE commits after `close` returned. Whatever another
    /// process does right after the close must see the whole file, and the store must have it
    /// after unmount, whether it was staged in memory or streamed.
    @Test func closeWithoutFlushIsCoherent() throws {
        let m = try MountedStore()
        var rng = SeededRandom(seed: 7)
        var expected: [String: [UInt8]] = [:]
        // Past the 4 MiB memory staging: the stream path.
        let big = (0..<(4_500_000)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
        for i in 0..<120 {
            let name = "n\(i)"
            let size = [0, 1, 4096, 70_000, 200_000, big.count][i % 6]
            var data = size == big.count ? big : (0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if size > 0 { data[0] = UInt8(truncatingIfNeeded: i) }
            let fd = open(m.path(name), O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            #expect(fd >= 0)
            // Several writes for the larger sizes, all committed at RELEASE.
            var at = 0
            while at < data.count {
                let n = min(data.count - at, 1 + Int.random(in: 0..<(256 << 10), using: &rng))
                #expect(data.withUnsafeBytes { write(fd, $0.baseAddress! + at, n) } == n)
                at += n
            }
            #expect(close(fd) == 0)
            // Straight after close: stat, read, rename and unlink all see the new file.
            var st = stat()
            #expect(stat(m.path(name), &st) == 0 && st.st_size == off_t(size), "\(name)")
            #expect(readFile(m.path(name)) == data, "\(name)")
            switch i % 3 {
            case 0: expected[name] = data
            case 1:
                #expect(rename(m.path(name), m.path(name + ".moved")) == 0)
                expected[name + ".moved"] = data
            default: #expect(unlink(m.path(name)) == 0)
            }
        }
        try m.unmount()
        let db = try SliceDB(path: m.data)
        for (name, data) in expected { #expect(try db.get(name) == data, "\(name)") }
        for i in stride(from: 2, to: 120, by: 3) { #expect(try db.get("n\(i)") == nil) }
        try db.close()
    }

    /// Every way to unmount commits what was written and closes the store: `fusermount3 -u`,
    /// `umount`, `slice umount`, and SIGTERM or SIGINT to a `--foreground` mount. Files are
    /// closed just before (created write-only, so their RELEASE may still be on its way), never
    /// fsynced. The first mount goes through the mount(8) helper, with mount(8)'s own flags
    /// and options, as `mount -t fuse.slice` and an fstab line run it.
    @Test func everyWayToUnmountCommitsAndCloses() throws {
        let m = try MountedStore()
        try m.unmount()
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        var written: [String: [UInt8]] = [:]
        func isMounted() -> Bool {
            (try? String(contentsOfFile: "/proc/mounts", encoding: .utf8))?.contains(" \(m.mnt) fuse.slice ") ?? false
        }
        func writeSome(_ name: String) {
            let data = Array("\(name): ".utf8) + [UInt8](repeating: UInt8(written.count), count: 10_000)
            let fd = open(m.path(name), O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            #expect(fd >= 0, "\(name)")
            #expect(data.withUnsafeBytes { write(fd, $0.baseAddress, 5) } == 5)  // two writes
            #expect(data.withUnsafeBytes { write(fd, $0.baseAddress! + 5, $0.count - 5) } == data.count - 5)
            #expect(close(fd) == 0)
            written[name] = data
        }
        /// Waits for the daemon to close the store, then checks everything written so far.
        func checkStore(_ way: String) throws {
            var db: SliceDB?
            for _ in 0..<200 where db == nil {
                db = try? SliceDB(path: m.data)  // `locked` until the daemon has closed it
                if db == nil { usleep(50_000) }
            }
            let store = try #require(db, "\(way): the store was not closed")
            for (name, data) in written { #expect(try store.get(name) == data, "\(way): \(name)") }
            try store.close()
        }

        let helper = try run(
            "/bin/sh", [repo + "/mount-scripts/mount.fuse.slice", m.data, m.mnt, "-n", "-o", "rw,defaults,noatime"],
            environment: ["SLICE_BIN": sliceExecutable])
        #expect(helper.status == 0, "\(helper.err)")
        #expect(isMounted())
        writeSome("viaFusermount")
        #expect(try run("/bin/fusermount3", ["-u", m.mnt]).status == 0)
        try checkStore("fusermount3 -u")

        for (way, command) in [
            ("umount", ["/bin/umount", m.mnt]), ("slice umount", [sliceExecutable, "umount", m.mnt]),
        ] {
            try m.mount()
            writeSome("via " + way)
            #expect(try run(command[0], Array(command.dropFirst())).status == 0, "\(way)")
            try checkStore(way)
        }

        for signal in [SIGTERM, SIGINT] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: sliceExecutable)
            p.arguments = ["mount", m.data, m.mnt, "--foreground"]
            p.standardInput = FileHandle.nullDevice
            try p.run()
            for _ in 0..<200 where !isMounted() { usleep(50_000) }
            #expect(isMounted())
            writeSome("viaSignal\(signal)")
            kill(p.processIdentifier, signal)
            for _ in 0..<400 where p.isRunning { usleep(50_000) }
            #expect(!p.isRunning, "signal \(signal) did not stop the mount")
            if p.isRunning {
                kill(p.processIdentifier, SIGKILL)
                _ = try? run("/bin/fusermount3", ["-u", "-z", m.mnt])
            }
            p.waitUntilExit()
            #expect(p.terminationStatus == 0, "signal \(signal)")
            #expect(!isMounted())
            try checkStore("signal \(signal)")
        }
        #expect(written.count == 5)
    }

    @Test func killedDaemonLosesNothingFsyncedAndStaleMountRecovers() throws {
        let m = try MountedStore()
        var written: [String: [UInt8]] = [:]
        for i in 0..<30 {
            let name = "synced\(i)"
            let data = Array("content \(i) ".utf8) + [UInt8](repeating: UInt8(i), count: i * 100)
            let fd = open(m.path(name), O_WRONLY | O_CREAT, 0o644)
            #expect(data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == data.count)
            #expect(fsync(fd) == 0)
            close(fd)
            written[name] = data
        }
        // Kill the daemon outright.
        let pid = try sh("pgrep -f 'slice mount .*\(m.data)' | head -1").out.trimmingCharacters(
            in: .whitespacesAndNewlines)
        #expect(!pid.isEmpty)
        try sh("kill -9 \(pid)")
        usleep(300_000)
        var st = stat()
        #expect(stat(m.mnt, &st) != 0 && errno == ENOTCONN)
        try m.mount()  // recovers the stale mount point
        for (name, data) in written { #expect(readFile(m.path(name)) == data, "\(name)") }
    }

    /// A full disk: ENOSPC, nothing acknowledged lost, writes work again once space is freed.
    @Test func diskFullGivesENOSPCAndRecovers() throws {
        let m = try MountedStore()
        let (disk, store) = try mountOnSmallDisk(m, mib: 40, filler: 8 << 20)
        defer { withExtendedLifetime(disk) {} }  // unmounted after the store's mount
        let small = disk.path
        defer { _ = try? run(sliceExecutable, ["umount", m.mnt]) }
        var saved: [String: [UInt8]] = [:]
        var sawENOSPC = false
        for i in 0..<100 {
            let name = "f\(i)"
            let data = [UInt8](repeating: UInt8(i), count: 1 << 20)
            let fd = open(m.mnt + "/" + name, O_WRONLY | O_CREAT, 0o644)
            if fd < 0 {
                sawENOSPC = errno == ENOSPC
                break
            }
            let w = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            let s = fsync(fd)
            let e = errno
            close(fd)
            if w != data.count || s != 0 {
                #expect(e == ENOSPC, "errno \(e)")
                sawENOSPC = e == ENOSPC
                break
            }
            saved[name] = data
        }
        #expect(sawENOSPC)
        #expect(!saved.isEmpty)
        // Files created write-only close without a FLUSH and are committed at RELEASE, after
        // close returned, so `write` must report a full disk: it refuses what the disk could
        // not take then, nothing of a refused write stays, and what was accepted reaches the
        // store.
        _ = try sh("cat /dev/zero > '\(small)/filler2' 2>/dev/null")  // every last page
        let chunk = [UInt8](repeating: 0x5a, count: 100 << 10)
        let first = open(m.mnt + "/first", O_WRONLY | O_CREAT, 0o644)
        #expect(first >= 0)
        let firstWrite = chunk.withUnsafeBytes { write(first, $0.baseAddress, $0.count) }
        #expect(firstWrite == -1 && errno == ENOSPC)
        #expect(close(first) == 0)
        var st = stat()
        #expect(stat(m.mnt + "/first", &st) == 0 && st.st_size == 0)
        let later = open(m.mnt + "/later", O_WRONLY | O_CREAT, 0o644)
        #expect(later >= 0)
        var accepted: [UInt8] = []
        #expect(write(later, "a", 1) == -1 && errno == ENOSPC)
        let refusedWhenFull = chunk.withUnsafeBytes { write(later, $0.baseAddress, $0.count) }
        #expect(refusedWhenFull == -1 && errno == ENOSPC)
        #expect(unlink(small + "/filler2") == 0)
        var refused = false
        for _ in 0..<400 {  // up to 40 MiB, more than the whole disk
            let n = chunk.withUnsafeBytes { write(later, $0.baseAddress, $0.count) }
            if n < 0 {
                #expect(errno == ENOSPC, "errno \(errno)")
                refused = true
                break
            }
            #expect(n == chunk.count)
            accepted += chunk
        }
        #expect(refused)
        #expect(accepted.count >= chunk.count)  // room again: deferred writes accepted
        #expect(close(later) == 0)
        #expect(stat(m.mnt + "/later", &st) == 0 && Int(st.st_size) == accepted.count)
        // Free space outside the store: writes work again.
        #expect(unlink(small + "/filler") == 0)
        #expect(writeFile(m.mnt + "/after", Array("after".utf8)) == 0)
        #expect(try run(sliceExecutable, ["umount", m.mnt]).status == 0)
        let db = try SliceDB(path: store)
        for (name, data) in saved { #expect(try db.get(name) == data, "\(name)") }
        #expect(try db.get("after") == Array("after".utf8))
        #expect(try db.get("first") == [])
        #expect(try db.get("later") == accepted)
        _ = try db.check()
        try db.close()
    }

    @Test func listingAHundredThousandEntries() throws {
        let m = try MountedStore()
        try m.unmount()
        do {
            let db = try SliceDB(path: m.data)
            var batch = WriteBatch()
            for i in 0..<100_000 {
                batch.put(Array("big/\(i)".utf8), [])
                if batch.count == 5000 {
                    try db.write(batch)
                    batch = WriteBatch()
                }
            }
            try db.write(batch)
            try db.put("big0/other", "x")
            try db.close()
        }
        try m.mount()
        let r = try sh("ls -f '\(m.mnt)/big' | wc -l")
        #expect(Int(r.out.trimmingCharacters(in: .whitespacesAndNewlines)) == 100_002)  // with . and ..
        let root = try sh("ls '\(m.mnt)'").out.split(separator: "\n")
        #expect(root == ["big", "big0"])
        // Entries carry offsets: every name once, and telldir/seekdir resume where they were.
        guard let d = opendir("\(m.mnt)/big") else {
            Issue.record("opendir failed")
            return
        }
        defer { closedir(d) }
        func name(_ e: UnsafeMutablePointer<dirent>) -> String {
            withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        }
        var names: [String] = []
        var middle: (position: Int, name: String)?
        while true {
            let position = telldir(d)
            guard let e = readdir(d) else { break }
            if names.count == 50_000 { middle = (position, name(e)) }
            names.append(name(e))
        }
        #expect(names.count == 100_002 && Set(names).count == 100_002)
        #expect(Set(names) == Set(["..", "."] + (0..<100_000).map { "\($0)" }))
        if let middle {
            seekdir(d, middle.position)
            #expect(readdir(d).map(name) == middle.name)
        }
    }
}

let XATTR_CREATE_FLAG: Int32 = 1
let XATTR_REPLACE_FLAG: Int32 = 2
