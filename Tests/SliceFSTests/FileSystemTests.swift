import CFuse
import Foundation
import Testing

@testable import SliceFS
@testable import SliceKV

/// The filesystem's rooms without a kernel: `SliceFileSystem` called as the FUSE bridge calls
/// it, over a store in a temp directory.
@Suite struct FileSystemTests {
    final class Fixture {
        let dir: String
        let db: SliceDB
        let fs: SliceFileSystem
        let me = Caller(uid: 1000, gid: 1000)

        init(options: Options = Options()) throws {
            var template = Array("/tmp/slicefs-unit-XXXXXX".utf8CString)
            dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
            var o = options
            o.blobThreshold = SliceFileSystem.defaultBlobThreshold
            db = try SliceDB(path: dir + "/data", options: o)
            fs = try SliceFileSystem(db: db, uid: 1000, gid: 1000)
            fs.mounted()
        }

        deinit {
            try? db.close()
            try? FileManager.default.removeItem(atPath: dir)
        }

        func n(_ s: String) -> [UInt8] { Array(s.utf8) }

        func lookup(_ parent: InodeNumber, _ name: String) throws -> EntryReply {
            try fs.lookup(parent: parent, name: n(name), caller: me)
        }

        /// Creates a file with `bytes` and closes it; returns its inode number.
        @discardableResult
        func file(_ parent: InodeNumber, _ name: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws -> InodeNumber {
            let (e, o) = try fs.create(parent: parent, name: n(name), mode: mode, flags: O_WRONLY, caller: me)
            if !bytes.isEmpty {
                _ = try bytes.withUnsafeBytes { try fs.write(e.ino, fh: o.fh, offset: 0, data: $0, caller: me) }
            }
            try fs.flush(e.ino, fh: o.fh, caller: me)
            fs.release(e.ino, fh: o.fh)
            return e.ino
        }

        func contents(_ ino: InodeNumber, offset: UInt64 = 0, count: Int = 1 << 20) throws -> [UInt8] {
            let o = try fs.open(ino, flags: O_RDONLY, caller: me)
            defer { fs.release(ino, fh: o.fh) }
            var buffer = [UInt8](repeating: 0, count: count)
            let got = try buffer.withUnsafeMutableBytes { try fs.read(ino, fh: o.fh, offset: offset, into: $0) }
            return Array(buffer[0..<got])
        }

        func attributes(_ ino: InodeNumber) throws -> Attributes { try fs.getattr(ino, fh: nil, caller: me).0 }

        func names(_ dir: InodeNumber) throws -> [String] {
            let o = try fs.opendir(dir, caller: me)
            defer { fs.releasedir(dir, fh: o.fh) }
            var names: [String] = []
            try fs.readdir(dir, fh: o.fh, offset: 0, plus: false) { e in
                names.append(String(decoding: e.name, as: UTF8.self))
                return true
            }
            return names.filter {
                $0 != "." && $0 != ".." && !$0.hasPrefix(".s") && !$0.hasPrefix(".f")
                    && !$0.hasPrefix(".c")
            }
        }

        func errno(_ body: () throws -> Void) -> Int32 {
            do {
                try body()
                return 0
            } catch {
                return FSError.errno(of: error)
            }
        }
    }

    /// Repeated lookups are answered from `LookupCache` while nothing is written, and every
    /// change (create, write, chmod, unlink, rename, mkdir) is seen by the next lookup.
    @Test func lookupsAfterChangesNeverAnswerFromBefore() throws {
        let f = try Fixture()
        let root = InodeNumbers.root
        #expect(try f.lookup(root, "a").ino == 0)
        #expect(try f.lookup(root, "a").ino == 0)
        let a = try f.file(root, "a", [1, 2, 3])
        #expect(try f.lookup(root, "a").ino == a)
        #expect(try f.lookup(root, "a").attributes?.size == 3)
        _ = try f.file(root, "b", Array(repeating: 7, count: 5000))
        let b = try f.lookup(root, "b")
        #expect(b.attributes?.size == 5000)
        // A write through an open handle: the next lookup sees the new size.
        let o = try f.fs.open(b.ino, flags: O_WRONLY, caller: f.me)
        _ = try [UInt8](repeating: 9, count: 100).withUnsafeBytes {
            try f.fs.write(b.ino, fh: o.fh, offset: 10_000, data: $0, caller: f.me)
        }
        f.fs.release(b.ino, fh: o.fh)
        #expect(try f.lookup(root, "b").attributes?.size == 10_100)
        var chmod = AttributeChanges()
        chmod.mode = 0o600
        _ = try f.fs.setattr(a, chmod, fh: nil, caller: f.me)
        #expect(try f.lookup(root, "a").attributes.map { $0.mode & 0o777 } == 0o600)
        try f.fs.rename(parent: root, name: f.n("a"), newParent: root, newName: f.n("c"), flags: 0, caller: f.me)
        #expect(try f.lookup(root, "a").ino == 0)
        #expect(try f.lookup(root, "c").ino == a)
        try f.fs.unlink(parent: root, name: f.n("c"), caller: f.me)
        #expect(try f.lookup(root, "c").ino == 0)
        let d = try f.fs.mkdir(parent: root, name: f.n("c"), mode: 0o755, caller: f.me)
        #expect(try f.lookup(root, "c").ino == d.ino)
        #expect(try f.lookup(root, "c").attributes.map { $0.mode & S_IFMT } == S_IFDIR)
    }

    /// Nodes kept after the kernel forgets them (`InodeTable.retained`) and the parents kept
    /// by a change (`LookupCache`) answer only while nothing changed them: every step forgets
    /// every inode (as `drop_caches` makes the kernel do) before looking again.
    @Test func nodesKeptPastForgetNeverAnswerFromBefore() throws {
        let f = try Fixture()
        let root = InodeNumbers.root
        func forgetAll(_ inos: InodeNumber...) { for ino in inos { f.fs.forget(ino, lookups: 1 << 20) } }
        let a = try f.file(root, "a", [1, 2, 3])
        forgetAll(a)
        #expect(try f.lookup(root, "a").attributes?.size == 3)
        let o = try f.fs.open(a, flags: O_WRONLY, caller: f.me)
        _ = try [UInt8](repeating: 9, count: 100).withUnsafeBytes {
            try f.fs.write(a, fh: o.fh, offset: 70_000, data: $0, caller: f.me)
        }
        f.fs.release(a, fh: o.fh)
        forgetAll(a)
        #expect(try f.lookup(root, "a").attributes?.size == 70_100)
        var chmod = AttributeChanges()
        chmod.mode = 0o600
        _ = try f.fs.setattr(a, chmod, fh: nil, caller: f.me)
        forgetAll(a)
        #expect(try f.lookup(root, "a").attributes.map { $0.mode & 0o777 } == 0o600)
        var shrink = AttributeChanges()
        shrink.size = 10
        _ = try f.fs.setattr(a, shrink, fh: nil, caller: f.me)
        forgetAll(a)
        #expect(try f.lookup(root, "a").attributes?.size == 10)
        // A second name of the same inode is resolved in full (its node was kept at "a").
        _ = try f.fs.link(a, newParent: root, newName: f.n("b"), caller: f.me)
        forgetAll(a)
        #expect(try f.lookup(root, "b").attributes?.nlink == 2)
        forgetAll(a)
        try f.fs.rename(parent: root, name: f.n("a"), newParent: root, newName: f.n("c"), flags: 0, caller: f.me)
        forgetAll(a)
        #expect(try f.lookup(root, "a").ino == 0)
        #expect(try f.lookup(root, "c").ino == a)
        #expect(try f.lookup(root, "c").attributes?.nlink == 2)
        try f.fs.unlink(parent: root, name: f.n("b"), caller: f.me)
        forgetAll(a)
        #expect(try f.lookup(root, "c").attributes?.nlink == 1)
        try f.fs.unlink(parent: root, name: f.n("c"), caller: f.me)
        forgetAll(a)
        #expect(try f.lookup(root, "c").ino == 0)
        // A directory renamed: what was kept below it is not answered under the old name.
        let d = try f.fs.mkdir(parent: root, name: f.n("d"), mode: 0o755, caller: f.me).ino
        let x = try f.file(d, "x", [5])
        forgetAll(x)
        try f.fs.rename(parent: root, name: f.n("d"), newParent: root, newName: f.n("e"), flags: 0, caller: f.me)
        #expect(try f.lookup(root, "d").ino == 0)
        let e = try f.lookup(root, "e").ino
        #expect(try f.lookup(e, "x").attributes?.size == 1)
        // Changes in one directory, one after another (the parent kept after each change).
        for i in 0..<20 { _ = try f.file(e, "f\(i)", [UInt8(i)]) }
        for i in stride(from: 0, to: 20, by: 2) {
            try f.fs.unlink(parent: e, name: f.n("f\(i)"), caller: f.me)
        }
        #expect(try f.names(e).count == 11)
        #expect(try f.attributes(e).mtime >= f.attributes(x).mtime)
    }

    /// An unlink frees a file nothing has open in its own batch (no purge at FORGET), and an
    /// OPEN that raced it by number gets ENOENT; a file still open is freed at its last close.
    @Test func unlinkFreesAClosedFileAtOnceAndAnOpenOneAtItsLastClose() throws {
        let f = try Fixture()
        let root = InodeNumbers.root
        let bytes = (0..<200_000).map { UInt8(truncatingIfNeeded: $0) }
        let a = try f.file(root, "a", bytes)
        #expect(try f.lookup(root, "a").ino == a)  // the kernel holds it, as at an unlink
        try f.fs.unlink(parent: root, name: f.n("a"), caller: f.me)
        #expect(try f.fs.namespace.record(a) == nil, "freed with the unlink")
        #expect(try f.fs.namespace.orphans().isEmpty)
        #expect(throws: FSError.self) { _ = try f.fs.open(a, flags: O_RDONLY, caller: f.me) }
        f.fs.forget(a, lookups: 1 << 20)
        // Open while unlinked: readable until the last close, then freed.
        let b = try f.file(root, "b", bytes)
        _ = try f.lookup(root, "b")
        let o = try f.fs.open(b, flags: O_RDONLY, caller: f.me)
        try f.fs.unlink(parent: root, name: f.n("b"), caller: f.me)
        #expect(try f.fs.namespace.record(b) != nil)
        var got = [UInt8](repeating: 0, count: 10)
        let n = try got.withUnsafeMutableBytes { try f.fs.read(b, fh: o.fh, offset: 100_000, into: $0) }
        #expect(n == 10 && got == Array(bytes[100_000..<100_010]))
        f.fs.release(b, fh: o.fh)
        f.fs.forget(b, lookups: 1 << 20)
        #expect(try f.fs.namespace.record(b) == nil, "freed at the last close and forget")
        #expect(try f.fs.namespace.orphans().isEmpty)
        // A name that comes back is a new file.
        let c = try f.file(root, "a", [9])
        #expect(c != a)
        #expect(try f.contents(c) == [9])
    }

    /// A file being written counts the blocks its commit will store (`du` while `cp` runs).
    @Test func blocksOfAFileBeingWritten() throws {
        let f = try Fixture()
        let (e, o) = try f.fs.create(
            parent: InodeNumbers.root, name: f.n("w"), mode: 0o644, flags: O_RDWR, caller: f.me)
        let data = [UInt8](repeating: 7, count: (1 << 20) + 1000)
        _ = try data.withUnsafeBytes { try f.fs.write(e.ino, fh: o.fh, offset: 0, data: $0, caller: f.me) }
        let open = try f.attributes(e.ino)
        #expect(open.size == UInt64(data.count))
        #expect(open.blocks >= UInt64(data.count) / 512, "\(open.blocks) blocks while open")
        f.fs.release(e.ino, fh: o.fh)
        #expect(try f.attributes(e.ino).blocks == open.blocks)
    }

    @Test func filesAreTheirKeysThroughTheAPI() throws {
        let f = try Fixture()
        let d = try f.fs.mkdir(parent: 1, name: f.n("docs"), mode: 0o755, caller: f.me).ino
        let bytes = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let ino = try f.file(d, "a.bin", bytes)
        #expect(try f.contents(ino) == bytes)
        #expect(try f.db.get(Array("docs/a.bin".utf8)) == bytes)
        #expect(try f.attributes(ino).size == 200_000)
        #expect(try f.names(d) == ["a.bin"])
    }

    @Test func sparseWritesAndTruncatesCostNothingForHoles() throws {
        let f = try Fixture()
        let (e, o) = try f.fs.create(parent: 1, name: f.n("sparse"), mode: 0o644, flags: O_RDWR, caller: f.me)
        _ = try [UInt8]("abc".utf8).withUnsafeBytes {
            try f.fs.write(e.ino, fh: o.fh, offset: 1 << 40, data: $0, caller: f.me)
        }
        try f.fs.flush(e.ino, fh: o.fh, caller: f.me)
        var a = try f.attributes(e.ino)
        #expect(a.size == (1 << 40) + 3)
        #expect(a.blocks <= 8 * 16)
        var buffer = [UInt8](repeating: 9, count: 8)
        let got = try buffer.withUnsafeMutableBytes {
            try f.fs.read(e.ino, fh: o.fh, offset: (1 << 40) - 5, into: $0)
        }
        #expect(got == 8 && buffer == [0, 0, 0, 0, 0] + Array("abc".utf8))
        // Past the largest size: EFBIG, and nothing changes.
        #expect(
            f.errno {
                _ = try [UInt8]("x".utf8).withUnsafeBytes {
                    try f.fs.write(e.ino, fh: o.fh, offset: (1 << 63) - 2, data: $0, caller: f.me)
                }
            } == EFBIG)
        var change = AttributeChanges()
        change.size = 1 << 50
        #expect(f.errno { _ = try f.fs.setattr(e.ino, change, fh: nil, caller: f.me) } == EFBIG)
        change.size = 1 << 42
        _ = try f.fs.setattr(e.ino, change, fh: nil, caller: f.me)
        a = try f.attributes(e.ino)
        #expect(a.size == 1 << 42)
        change.size = 10
        _ = try f.fs.setattr(e.ino, change, fh: nil, caller: f.me)
        #expect(try f.attributes(e.ino).size == 10)
        #expect(try f.contents(e.ino) == [UInt8](repeating: 0, count: 10))
        f.fs.release(e.ino, fh: o.fh)
    }

    @Test func hardLinksShareOneInode() throws {
        let f = try Fixture()
        let ino = try f.file(1, "one", Array("hello".utf8))
        let e = try f.fs.link(ino, newParent: 1, newName: f.n("two"), caller: f.me)
        #expect(e.ino == ino)
        #expect(try f.attributes(ino).nlink == 2)
        #expect(try f.db.get(Array("two".utf8)) == Array("hello".utf8))
        try f.fs.unlink(parent: 1, name: f.n("one"), caller: f.me)
        #expect(try f.attributes(ino).nlink == 1)
        #expect(try f.contents(ino) == Array("hello".utf8))
        #expect(try f.lookup(1, "one").ino == 0)
        #expect(try f.db.get(Array("one".utf8)) == nil)
    }

    @Test func specialNodesAndDirectoryLinks() throws {
        let f = try Fixture()
        let fifo = try f.fs.mknod(parent: 1, name: f.n("fifo"), mode: S_IFIFO | 0o600, rdev: 0, caller: f.me)
        #expect(fifo.attributes!.mode & S_IFMT == S_IFIFO)
        let sock = try f.fs.mknod(parent: 1, name: f.n("sock"), mode: S_IFSOCK | 0o600, rdev: 0, caller: f.me)
        #expect(sock.attributes!.mode & S_IFMT == S_IFSOCK)
        let dev = try f.fs.mknod(parent: 1, name: f.n("null"), mode: S_IFCHR | 0o666, rdev: 0x103, caller: f.me)
        #expect(dev.attributes!.rdev == 0x103)
        let d = try f.fs.mkdir(parent: 1, name: f.n("d"), mode: 0o755, caller: f.me).ino
        _ = try f.fs.mkdir(parent: d, name: f.n("s1"), mode: 0o755, caller: f.me)
        _ = try f.fs.mkdir(parent: d, name: f.n("s2"), mode: 0o755, caller: f.me)
        #expect(try f.attributes(d).nlink == 4)
        #expect(try f.lookup(1, "fifo").ino == fifo.ino)
        #expect(try f.db.get(Array("fifo".utf8)) == nil)
    }

    @Test func parentTimesFollowChanges() throws {
        let f = try Fixture()
        let d = try f.fs.mkdir(parent: 1, name: f.n("d"), mode: 0o755, caller: f.me).ino
        let before = try f.attributes(d).mtime
        usleep(20_000)
        try f.file(d, "x", [1])
        let afterCreate = try f.attributes(d)
        #expect(afterCreate.mtime > before && afterCreate.ctime == afterCreate.mtime)
        usleep(20_000)
        try f.fs.rename(parent: d, name: f.n("x"), newParent: d, newName: f.n("y"), flags: 0, caller: f.me)
        #expect(try f.attributes(d).mtime > afterCreate.mtime)
        let y = try f.lookup(d, "y").ino
        let rootBefore = try f.attributes(1).mtime
        usleep(20_000)
        try f.fs.unlink(parent: d, name: f.n("y"), caller: f.me)
        #expect(try f.attributes(1).mtime == rootBefore)
        f.fs.forget(y, lookups: 2)
        #expect(f.errno { _ = try f.attributes(y) } == ENOENT)
    }

    @Test func openUnlinkedFilesLiveUntilTheLastClose() throws {
        let f = try Fixture()
        let (e, o) = try f.fs.create(parent: 1, name: f.n("tmp"), mode: 0o600, flags: O_RDWR, caller: f.me)
        _ = try [UInt8]("data".utf8).withUnsafeBytes {
            try f.fs.write(e.ino, fh: o.fh, offset: 0, data: $0, caller: f.me)
        }
        try f.fs.unlink(parent: 1, name: f.n("tmp"), caller: f.me)
        let (a, _) = try f.fs.getattr(e.ino, fh: o.fh, caller: f.me)
        #expect(a.nlink == 0 && a.size == 4)
        _ = try [UInt8]("more".utf8).withUnsafeBytes {
            try f.fs.write(e.ino, fh: o.fh, offset: 4, data: $0, caller: f.me)
        }
        var change = AttributeChanges()
        change.mode = 0o640
        _ = try f.fs.setattr(e.ino, change, fh: o.fh, caller: f.me)
        var buffer = [UInt8](repeating: 0, count: 16)
        let got = try buffer.withUnsafeMutableBytes { try f.fs.read(e.ino, fh: o.fh, offset: 0, into: $0) }
        #expect(Array(buffer[0..<got]) == Array("datamore".utf8))
        f.fs.release(e.ino, fh: o.fh)
        // Still held by the kernel's lookup: kept, as a path walk in progress may open it.
        #expect(try f.attributes(e.ino).nlink == 0)
        f.fs.forget(e.ino, lookups: 1)
        #expect(f.errno { _ = try f.attributes(e.ino) } == ENOENT)
        #expect(try f.db.scan(.all, keyspace: FSKeyspace.chunks).next() == nil)
    }

    @Test func apiWrittenFilesAreAdoptedOnWrite() throws {
        let f = try Fixture()
        try f.db.put(Array("api/file".utf8), Array("from the api".utf8))
        let d = try f.lookup(1, "api")
        let e = try f.lookup(d.ino, "file")
        #expect(try f.contents(e.ino) == Array("from the api".utf8))
        let o = try f.fs.open(e.ino, flags: O_WRONLY, caller: f.me)
        _ = try [UInt8]("FROM".utf8).withUnsafeBytes {
            try f.fs.write(e.ino, fh: o.fh, offset: 0, data: $0, caller: f.me)
        }
        f.fs.release(e.ino, fh: o.fh)
        #expect(try f.db.get(Array("api/file".utf8)) == Array("FROM the api".utf8))
        #expect(try f.lookup(d.ino, "file").ino == e.ino)
    }

    @Test func renameMovesSubtreesAndKeepsNumbers() throws {
        let f = try Fixture()
        let a = try f.fs.mkdir(parent: 1, name: f.n("a"), mode: 0o755, caller: f.me).ino
        let x = try f.file(a, "x", Array("x".utf8))
        try f.fs.rename(parent: 1, name: f.n("a"), newParent: 1, newName: f.n("b"), flags: 0, caller: f.me)
        let b = try f.lookup(1, "b").ino
        #expect(b == a)
        #expect(try f.lookup(b, "x").ino == x)
        #expect(try f.contents(x) == Array("x".utf8))
        #expect(try f.db.get(Array("b/x".utf8)) == Array("x".utf8))
        #expect(try f.db.get(Array("a/x".utf8)) == nil)
        try f.file(1, "c", Array("c".utf8))
        #expect(
            f.errno {
                try f.fs.rename(parent: 1, name: f.n("c"), newParent: 1, newName: f.n("b"), flags: 0, caller: f.me)
            } == EISDIR)
        try f.fs.rename(
            parent: 1, name: f.n("c"), newParent: 1, newName: f.n("b"), flags: slice_rename_exchange, caller: f.me)
        #expect(try f.db.get(Array("b".utf8)) == Array("c".utf8))
        #expect(try f.db.get(Array("c/x".utf8)) == Array("x".utf8))
    }

    @Test func namesAndErrnos() throws {
        let f = try Fixture()
        try f.file(1, "f", [1])
        #expect(f.errno { _ = try f.fs.mkdir(parent: 1, name: f.n("f"), mode: 0o755, caller: f.me) } == EEXIST)
        let d = try f.fs.mkdir(parent: 1, name: f.n("d"), mode: 0o755, caller: f.me).ino
        try f.file(d, "in", [1])
        #expect(f.errno { try f.fs.rmdir(parent: 1, name: f.n("d"), caller: f.me) } == ENOTEMPTY)
        #expect(f.errno { try f.fs.unlink(parent: 1, name: f.n("d"), caller: f.me) } == EISDIR)
        #expect(f.errno { try f.fs.rmdir(parent: 1, name: f.n("f"), caller: f.me) } == ENOTDIR)
        #expect(f.errno { try f.fs.unlink(parent: 1, name: f.n("nope"), caller: f.me) } == ENOENT)
        #expect(
            f.errno {
                _ = try f.fs.mkdir(parent: 1, name: [UInt8](repeating: 0x61, count: 256), mode: 0o755, caller: f.me)
            }
                == ENAMETOOLONG)
        #expect(f.errno { try f.fs.unlink(parent: 1, name: f.n(".stats"), caller: f.me) } == EPERM)
        try f.fs.unlink(parent: d, name: f.n("in"), caller: f.me)
        try f.fs.rmdir(parent: 1, name: f.n("d"), caller: f.me)
        #expect(try f.lookup(1, "d").ino == 0)
    }

    @Test func xattrs() throws {
        let f = try Fixture()
        let ino = try f.file(1, "f", [1])
        try [UInt8]("v".utf8).withUnsafeBytes {
            try f.fs.setxattr(ino, name: f.n("user.a"), value: $0, flags: 0, caller: f.me)
        }
        #expect(try f.fs.getxattr(ino, name: f.n("user.a"), caller: f.me) == Array("v".utf8))
        #expect(try f.fs.listxattr(ino, caller: f.me) == Array("user.a\0".utf8))
        #expect(f.errno { _ = try f.fs.getxattr(ino, name: f.n("user.b"), caller: f.me) } == ENODATA)
        try f.fs.removexattr(ino, name: f.n("user.a"), caller: f.me)
        #expect(f.errno { try f.fs.removexattr(ino, name: f.n("user.a"), caller: f.me) } == ENODATA)
    }

    @Test func numbersSurviveRemount() throws {
        var template = Array("/tmp/slicefs-unit-XXXXXX".utf8CString)
        let dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var inos: [InodeNumber] = []
        for round in 0..<2 {
            let db = try SliceDB(path: dir + "/data")
            let fs = try SliceFileSystem(db: db)
            fs.mounted()
            let me = Caller(uid: 0, gid: 0)
            if round == 0 {
                _ = try fs.mkdir(parent: 1, name: Array("d".utf8), mode: 0o755, caller: me)
                try db.put(Array("api".utf8), [1])
            }
            inos.append(try fs.lookup(parent: 1, name: Array("d".utf8), caller: me).ino)
            inos.append(try fs.lookup(parent: 1, name: Array("api".utf8), caller: me).ino)
            let (e, o) = try fs.create(
                parent: 1, name: Array("new\(round)".utf8), mode: 0o644, flags: O_WRONLY, caller: me)
            fs.release(e.ino, fh: o.fh)
            inos.append(e.ino)
            fs.unmounting()
            try db.close()
        }
        #expect(inos[0] == inos[3] && inos[1] == inos[4])
        #expect(inos[2] != inos[5])
    }

    /// A store written by the first layout (path-keyed records in 0x10/0x11) mounts with its
    /// modes, empty directories and symlinks, and a change moves a record to the new layout.
    @Test func firstLayoutStoresStillMount() throws {
        var template = Array("/tmp/slicefs-unit-XXXXXX".utf8CString)
        let dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = try SliceDB(path: dir + "/data")
        defer { try? db.close() }
        var batch = WriteBatch()
        batch.put(Array("f".utf8), Array("old".utf8))
        batch.put(
            Array("f".utf8), NodeRecord(kind: .file, mode: 0o600, uid: 7, gid: 7).encode(),
            keyspace: FSKeyspace.legacyFileAttributes)
        batch.put(
            Array("empty".utf8), NodeRecord(kind: .directory, mode: 0o700, uid: 7, gid: 7).encode(),
            keyspace: FSKeyspace.legacyNodes)
        var link = NodeRecord(kind: .symlink, mode: 0o777, uid: 7, gid: 7)
        link.target = Array("f".utf8)
        batch.put(Array("l".utf8), link.encode(), keyspace: FSKeyspace.legacyNodes)
        try db.write(batch)
        let fs = try SliceFileSystem(db: db)
        fs.mounted()
        let me = Caller(uid: 0, gid: 0)
        let f = try fs.lookup(parent: 1, name: Array("f".utf8), caller: me)
        #expect(f.attributes?.mode == S_IFREG | 0o600 && f.attributes?.uid == 7)
        let e = try fs.lookup(parent: 1, name: Array("empty".utf8), caller: me)
        #expect(e.attributes?.mode == S_IFDIR | 0o700)
        let l = try fs.lookup(parent: 1, name: Array("l".utf8), caller: me)
        #expect(try fs.readlink(l.ino, caller: me) == Array("f".utf8))
        var change = AttributeChanges()
        change.mode = 0o640
        _ = try fs.setattr(f.ino, change, fh: nil, caller: me)
        #expect(try db.get(Array("f".utf8), keyspace: FSKeyspace.legacyFileAttributes) == nil)
        #expect(try fs.getattr(f.ino, fh: nil, caller: me).0.mode == S_IFREG | 0o640)
        #expect(try db.get(Array("f".utf8)) == Array("old".utf8))
        try fs.rmdir(parent: 1, name: Array("empty".utf8), caller: me)
        #expect(try fs.lookup(parent: 1, name: Array("empty".utf8), caller: me).ino == 0)
    }
}
