import Foundation
import Testing

@testable import SliceFS
@testable import SliceKV

/// What a mount lets other users do, and where its paths can lead.
@Suite(.serialized) struct MountSecurityTests {
    static let asNobody = "setpriv --reuid=65534 --regid=65534 --clear-groups"

    /// On a shared mount (`allow_other`) others may read the statistics but not flush, compact
    /// or sync, nor read what the last of those returned.
    @Test func controlFilesThatActBelongToTheMountingUser() throws {
        let m = try MountedStore(options: ["allow_other"])
        #expect(chmod(m.root, 0o755) == 0)  // mkdtemp made it 0700: others could not reach the mount
        #expect(writeFile(m.path("k"), [1]) == 0)
        var st = stat()
        for name in [".flush", ".compact", ".sync"] {
            #expect(stat(m.path(name), &st) == 0)
            #expect(st.st_mode & 0o7777 == 0o600, "\(name)")
            #expect(st.st_uid == getuid(), "\(name)")
            let write = try sh("\(Self.asNobody) bash -c 'echo go > \(m.path(name))'")
            #expect(write.status != 0, "\(name)")
            #expect(write.err.contains("Permission denied"), "\(name): \(write.err)")
            let read = try sh("\(Self.asNobody) cat \(m.path(name))")
            #expect(read.status != 0, "\(name)")
            #expect(readFile(m.path(name)) == Array("never run\n".utf8), "\(name) was run by someone else")
        }
        for name in [".stats", ".stats.json"] {
            #expect(stat(m.path(name), &st) == 0)
            #expect(st.st_mode & 0o7777 == 0o444, "\(name)")
            let read = try sh("\(Self.asNobody) cat \(m.path(name))")
            #expect(read.status == 0, "\(name): \(read.err)")
            #expect(read.out.contains("puts"))
        }
        let flush = try sh("echo go > '\(m.path(".flush"))' && cat '\(m.path(".flush"))'")
        #expect(flush.status == 0, "\(flush.err)")
        #expect(flush.out.hasPrefix("ok flush"))
    }

    /// The daemon holds to those modes by itself, for a mount where the kernel checks nothing
    /// (no `default_permissions`).
    @Test func daemonRefusesActingControlFilesToOthersByItself() throws {
        var template = Array("/tmp/slicefs-XXXXXX".utf8CString)
        let dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = try SliceDB(path: dir + "/data")
        defer { try? db.close() }
        let fs = try SliceFileSystem(db: db, uid: 1000, gid: 1000)
        func open(_ name: String, _ flags: Int32, uid: uid_t) -> Int32 {
            do {
                let ino = try fs.lookup(
                    parent: 1, name: Array(name.utf8.dropFirst()), caller: Caller(uid: uid, gid: uid)
                ).ino
                let reply = try fs.open(ino, flags: flags, caller: Caller(uid: uid, gid: uid))
                fs.release(ino, fh: reply.fh)
                return 0
            } catch {
                return -FSError.errno(of: error)
            }
        }
        func access(_ name: String, _ mask: Int32, uid: uid_t, gid: gid_t) -> Int32 {
            do {
                let caller = Caller(uid: uid, gid: gid)
                let ino = try fs.lookup(parent: 1, name: Array(name.utf8.dropFirst()), caller: caller).ino
                try fs.access(ino, mask: mask, caller: caller)
                return 0
            } catch {
                return -FSError.errno(of: error)
            }
        }
        for name in ["/.flush", "/.compact", "/.sync"] {
            #expect(open(name, O_WRONLY, uid: 65534) == -EACCES, "\(name)")
            #expect(open(name, O_RDONLY, uid: 65534) == -EACCES, "\(name)")
            #expect(open(name, O_WRONLY, uid: 1000) == 0, "\(name)")
            #expect(open(name, O_WRONLY, uid: 0) == 0, "\(name)")
            #expect(access(name, W_OK, uid: 65534, gid: 65534) == -EACCES)
            #expect(access(name, R_OK, uid: 65534, gid: 1000) == -EACCES)
            #expect(access(name, W_OK | R_OK, uid: 1000, gid: 1000) == 0)
            let ino = try fs.lookup(parent: 1, name: Array(name.utf8.dropFirst()), caller: Caller(uid: 0, gid: 0)).ino
            let (attrs, _) = try fs.getattr(ino, fh: nil, caller: Caller(uid: 0, gid: 0))
            #expect(attrs.mode & 0o7777 == 0o600 && attrs.uid == 1000)
        }
        for name in ["/.stats", "/.stats.json"] {
            #expect(open(name, O_RDONLY, uid: 65534) == 0)
            #expect(open(name, O_WRONLY, uid: 1000) == -EACCES)
            #expect(access(name, R_OK, uid: 65534, gid: 65534) == 0)
            #expect(access(name, W_OK, uid: 0, gid: 0) == -EACCES)
        }
    }

    /// Names are keys and symlink targets are data: no request makes the daemon touch a file
    /// outside the data directory. `..` in a key is the ordinary name `%2E%2E`; a symlink's
    /// target is stored and handed back, and only the kernel follows it, for the caller.
    @Test func namesAndSymlinksNeverLeadOutsideTheDataDirectory() throws {
        let m = try MountedStore()
        try m.unmount()
        do {
            let db = try SliceDB(path: m.data)
            try db.put("../outside", "api 1")
            try db.put("a/../../outside2", "api 2")
            try db.put("/etc/slice-test", "api 3")
            try db.close()
        }
        try m.mount()
        #expect(readFile(m.path("%2E%2E/outside")) == Array("api 1".utf8))
        #expect(readFile(m.path("a/%2E%2E/%2E%2E/outside2")) == Array("api 2".utf8))
        #expect(readFile(m.path("%/etc/slice-test")) == Array("api 3".utf8))
        #expect(mkdir(m.path("%2E%2E/sub"), 0o755) == 0)
        #expect(writeFile(m.path("%2E%2E/sub/x"), [9]) == 0)
        #expect(errnoOf(mkdir(m.path(".."), 0o755)) == EEXIST)  // the kernel's own `..`

        let outside = m.root + "/outside-target"
        #expect(symlink(outside, m.path("abs")) == 0)
        #expect(symlink("../outside-target", m.path("rel")) == 0)
        #expect(symlink("../../../../../../../../etc/shadow", m.path("deep")) == 0)
        for (name, target) in [
            ("abs", outside), ("rel", "../outside-target"), ("deep", "../../../../../../../../etc/shadow"),
        ] {
            var buf = [CChar](repeating: 0, count: 4096)
            let n = readlink(m.path(name), &buf, buf.count)
            #expect(
                n >= 0 && String(decoding: buf[0..<max(0, n)].map { UInt8(bitPattern: $0) }, as: UTF8.self) == target)
            var st = stat()
            #expect(lstat(m.path(name), &st) == 0 && st.st_mode & S_IFMT == S_IFLNK)
            #expect(errnoOf(open(m.path(name), O_RDONLY | O_NOFOLLOW)) == ELOOP)
        }
        #expect(errnoOf(open(m.path("abs"), O_RDONLY)) == ENOENT)  // followed by the kernel: nothing there
        try m.unmount()

        #expect(!FileManager.default.fileExists(atPath: outside))
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: m.root)) == ["data", "mnt"])
        let storeFile = try Regex(#"^(CURRENT|LOCK|RESERVE|MANIFEST-[0-9]+|[0-9]+\.(log|sst|blob)|mount\.log)$"#)
        for name in try FileManager.default.contentsOfDirectory(atPath: m.data) {
            #expect(name.wholeMatch(of: storeFile) != nil, "unexpected file \(name) in the data directory")
        }
        let db = try SliceDB(path: m.data)
        #expect(try db.get("../sub/x") == [9])
        #expect(try db.get("abs") == nil, "a symlink is metadata, not a value")
        try db.close()
    }

    /// The data directory `slice mount` makes is its owner's alone, and so is the daemon's log.
    @Test func dataDirectoryMadeByMountIsPrivate() throws {
        let m = try MountedStore()
        var st = stat()
        #expect(stat(m.data, &st) == 0 && st.st_mode & 0o7777 == 0o700)
        #expect(stat(m.data + "/mount.log", &st) == 0 && st.st_mode & 0o7777 == 0o600)
    }
}
