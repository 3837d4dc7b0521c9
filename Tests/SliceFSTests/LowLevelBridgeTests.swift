import CFuse
import Foundation
import Testing

@testable import SliceFS
@testable import SliceKV

/// The low-level FUSE bridge through the real kernel: each test mounts a fresh in-memory
/// `NullFileSystem` with `slice null-mount` and drives it with ordinary system calls and
/// shell tools, so every request type crosses libfuse, the bridge and back.
@Suite(.serialized) struct LowLevelBridgeTests {
    @Test func filesReadWriteStatAndTimes() throws {
        let m = try NullMountProcess()
        let f = m.path("f")
        let fd = open(f, O_RDWR | O_CREAT | O_EXCL, 0o640)
        try #require(fd >= 0)
        defer { close(fd) }
        let data = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) }
        #expect(data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == data.count)
        // A write past the end leaves zeros between.
        #expect([UInt8]([1, 2, 3]).withUnsafeBytes { pwrite(fd, $0.baseAddress, 3, 200_000) } == 3)
        var st = stat()
        #expect(fstat(fd, &st) == 0)
        #expect(st.st_size == 200_003)
        #expect(st.st_mode == S_IFREG | 0o640)
        #expect(st.st_nlink == 1)
        #expect(st.st_uid == getuid())
        var back = [UInt8](repeating: 0xFF, count: 200_003)
        #expect(pread(fd, &back, back.count, 0) == back.count)
        #expect(Array(back[0..<100_000]) == data)
        #expect(back[100_000..<200_000].allSatisfy { $0 == 0 })
        #expect(Array(back[200_000...]) == [1, 2, 3])
        #expect(pread(fd, &back, 10, 300_000) == 0)  // past the end
        #expect(readFile(f) == back)

        // O_TRUNC truncates (the kernel hands it to OPEN), O_APPEND appends.
        #expect(writeFile(f, Array("hello".utf8)) == 0)
        let a = open(f, O_WRONLY | O_APPEND)
        #expect(Array(" world".utf8).withUnsafeBytes { write(a, $0.baseAddress, $0.count) } == 6)
        close(a)
        #expect(readFile(f) == Array("hello world".utf8))

        // chmod, chown, utimensat (explicit and UTIME_NOW); a write moves mtime and ctime.
        #expect(chmod(f, 0o6755) == 0)
        #expect(stat(f, &st) == 0)
        #expect(st.st_mode == S_IFREG | 0o6755)
        // chown clears set-user-ID and set-group-ID, even root's (the kernel asks by SETATTR).
        #expect(chown(f, 1234, 5678) == 0)
        var times = [timespec(tv_sec: 1_000_000, tv_nsec: 5), timespec(tv_sec: 2_000_000, tv_nsec: 7)]
        #expect(utimensat(AT_FDCWD, f, &times, 0) == 0)
        #expect(stat(f, &st) == 0)
        #expect(st.st_mode == S_IFREG | 0o755)
        #expect((st.st_uid, st.st_gid) == (1234, 5678))
        #expect((st.st_atim.tv_sec, st.st_atim.tv_nsec) == (1_000_000, 5))
        #expect((st.st_mtim.tv_sec, st.st_mtim.tv_nsec) == (2_000_000, 7))
        #expect(pwrite(fd, "J", 1, 0) == 1)
        #expect(fstat(fd, &st) == 0)
        #expect(st.st_mtim.tv_sec > 2_000_000)
        #expect(st.st_ctim.tv_sec > 2_000_000)
        times = [
            timespec(tv_sec: 0, tv_nsec: Int(slice_utime_now)), timespec(tv_sec: 0, tv_nsec: Int(slice_utime_omit)),
        ]
        #expect(utimensat(AT_FDCWD, f, &times, 0) == 0)
        #expect(stat(f, &st) == 0)
        #expect(st.st_atim.tv_sec > 1_000_000)
        #expect(st.st_mtim.tv_sec > 2_000_000)
    }

    @Test func errnosForBadRequests() throws {
        let m = try NullMountProcess()
        #expect(errnoOf(open(m.path("missing"), O_RDONLY)) == ENOENT)
        #expect(statErrno(m.path("missing/x")) == ENOENT)
        #expect(writeFile(m.path("f"), [1]) == 0)
        #expect(errnoOf(open(m.path("f"), O_WRONLY | O_CREAT | O_EXCL, 0o644)) == EEXIST)
        #expect(errnoOf(open(m.path("f/x"), O_RDONLY)) == ENOTDIR)
        #expect(errnoOf(mkdir(m.path("f/x"), 0o755)) == ENOTDIR)
        #expect(mkdir(m.path("d"), 0o755) == 0)
        #expect(errnoOf(mkdir(m.path("d"), 0o755)) == EEXIST)
        #expect(errnoOf(open(m.path("d"), O_WRONLY)) == EISDIR)
        #expect(errnoOf(unlink(m.path("d"))) == EISDIR)
        #expect(errnoOf(rmdir(m.path("f"))) == ENOTDIR)
        #expect(writeFile(m.path("d/inner"), [2]) == 0)
        #expect(errnoOf(rmdir(m.path("d"))) == ENOTEMPTY)
        #expect(errnoOf(open(m.path(String(repeating: "n", count: 256)), O_WRONLY | O_CREAT, 0o644)) == ENAMETOOLONG)
        #expect(writeFile(m.path(String(repeating: "n", count: 255)), [3]) == 0)
        #expect(errnoOf(link(m.path("d"), m.path("dlink"))) == EPERM)
        // Directory link counts: 2 + subdirectories.
        #expect(mkdir(m.path("d/s1"), 0o755) == 0)
        #expect(mkdir(m.path("d/s2"), 0o755) == 0)
        var st = stat()
        #expect(stat(m.path("d"), &st) == 0)
        #expect(st.st_nlink == 4)
        #expect(rmdir(m.path("d/s2")) == 0)
        #expect(stat(m.path("d"), &st) == 0)
        #expect(st.st_nlink == 3)
        #expect(unlink(m.path("d/inner")) == 0)
        #expect(errnoOf(unlink(m.path("d/inner"))) == ENOENT)
        // The null filesystem's size limit.
        let fd = open(m.path("big"), O_RDWR | O_CREAT, 0o644)
        #expect(errnoOf(Int32(pwrite(fd, "x", 1, off_t(NullFileSystem.maxFileSize)))) == EFBIG)
        #expect(errnoOf(ftruncate(fd, off_t(NullFileSystem.maxFileSize) + 1)) == EFBIG)
        close(fd)
    }

    @Test func hardLinksSymlinksAndUnlinkedOpenFiles() throws {
        let m = try NullMountProcess()
        #expect(writeFile(m.path("a"), Array("shared".utf8)) == 0)
        #expect(mkdir(m.path("d"), 0o755) == 0)
        #expect(link(m.path("a"), m.path("d/b")) == 0)
        #expect(errnoOf(link(m.path("a"), m.path("d/b"))) == EEXIST)
        var sa = stat()
        var sb = stat()
        #expect(stat(m.path("a"), &sa) == 0)
        #expect(stat(m.path("d/b"), &sb) == 0)
        #expect(sa.st_ino == sb.st_ino)
        #expect(sa.st_nlink == 2)
        #expect(sb.st_nlink == 2)
        #expect(writeFile(m.path("d/b"), Array("changed".utf8)) == 0)
        #expect(readFile(m.path("a")) == Array("changed".utf8))
        #expect(unlink(m.path("a")) == 0)
        #expect(stat(m.path("d/b"), &sb) == 0)
        #expect(sb.st_nlink == 1)
        #expect(readFile(m.path("d/b")) == Array("changed".utf8))

        #expect(symlink("d/b", m.path("s")) == 0)
        #expect(symlink("/nowhere/at/all", m.path("dangling")) == 0)
        #expect(readlinkBytes(m.path("s")).target == Array("d/b".utf8))
        #expect(readlinkBytes(m.path("dangling")).target == Array("/nowhere/at/all".utf8))
        var sl = stat()
        #expect(lstat(m.path("s"), &sl) == 0)
        #expect(sl.st_mode & S_IFMT == S_IFLNK)
        #expect(sl.st_size == 3)
        #expect(readFile(m.path("s")) == Array("changed".utf8))  // followed by the kernel
        #expect(errnoOf(stat(m.path("dangling"), &sl)) == ENOENT)
        #expect(readlinkBytes(m.path("d/b")).error == EINVAL)

        // An open file outlives its last name.
        let fd = open(m.path("d/b"), O_RDWR)
        try #require(fd >= 0)
        #expect(unlink(m.path("d/b")) == 0)
        #expect(pwrite(fd, "C", 1, 0) == 1)
        var buf = [UInt8](repeating: 0, count: 16)
        #expect(pread(fd, &buf, 16, 0) == 7)
        #expect(Array(buf[0..<7]) == Array("Changed".utf8))
        #expect(fstat(fd, &sb) == 0)
        #expect(sb.st_nlink == 0)
        close(fd)
        #expect(errnoOf(open(m.path("d/b"), O_RDONLY)) == ENOENT)
    }

    @Test func renameWithAndWithoutFlags() throws {
        let m = try NullMountProcess()
        #expect(writeFile(m.path("a"), [1]) == 0)
        #expect(writeFile(m.path("b"), [2]) == 0)
        #expect(rename(m.path("a"), m.path("c")) == 0)
        #expect(statErrno(m.path("a")) == ENOENT)
        #expect(readFile(m.path("c")) == [1])
        // Over an existing file: the old one is gone.
        #expect(rename(m.path("c"), m.path("b")) == 0)
        #expect(readFile(m.path("b")) == [1])
        #expect(statErrno(m.path("c")) == ENOENT)
        // RENAME_NOREPLACE and RENAME_EXCHANGE.
        #expect(writeFile(m.path("x"), [9]) == 0)
        #expect(
            errnoOf(slice_renameat2(AT_FDCWD, m.path("x"), AT_FDCWD, m.path("b"), slice_rename_noreplace)) == EEXIST)
        #expect(readFile(m.path("b")) == [1])
        #expect(slice_renameat2(AT_FDCWD, m.path("x"), AT_FDCWD, m.path("y"), slice_rename_noreplace) == 0)
        #expect(slice_renameat2(AT_FDCWD, m.path("y"), AT_FDCWD, m.path("b"), slice_rename_exchange) == 0)
        #expect(readFile(m.path("y")) == [1])
        #expect(readFile(m.path("b")) == [9])
        #expect(
            errnoOf(slice_renameat2(AT_FDCWD, m.path("y"), AT_FDCWD, m.path("nope"), slice_rename_exchange)) == ENOENT)
        // Directories: across parents (link counts follow), over files and non-empty ones,
        // and never below themselves.
        #expect(mkdir(m.path("p"), 0o755) == 0)
        #expect(mkdir(m.path("q"), 0o755) == 0)
        #expect(mkdir(m.path("p/d"), 0o755) == 0)
        #expect(writeFile(m.path("p/d/f"), [5]) == 0)
        #expect(rename(m.path("p/d"), m.path("q/d")) == 0)
        var st = stat()
        #expect(stat(m.path("p"), &st) == 0)
        #expect(st.st_nlink == 2)
        #expect(stat(m.path("q"), &st) == 0)
        #expect(st.st_nlink == 3)
        #expect(readFile(m.path("q/d/f")) == [5])
        #expect(errnoOf(rename(m.path("q"), m.path("q/d/inside"))) == EINVAL)
        #expect(errnoOf(rename(m.path("b"), m.path("q"))) == EISDIR)
        #expect(errnoOf(rename(m.path("q"), m.path("b"))) == ENOTDIR)
        #expect([ENOTEMPTY, EEXIST].contains(errnoOf(rename(m.path("p"), m.path("q")))))
        #expect(rename(m.path("q"), m.path("p")) == 0)  // over an empty directory
        #expect(readFile(m.path("p/d/f")) == [5])
        #expect(stat(m.path("p/d/.."), &st) == 0)  // ".." follows the move
        var sp = stat()
        #expect(stat(m.path("p"), &sp) == 0)
        #expect(st.st_ino == sp.st_ino)
        #expect(sortedNames(m.mnt) == ["b", "p", "y"])
    }

    @Test func fifosSocketsAndDeviceNodes() throws {
        let m = try NullMountProcess()
        #expect(mkfifo(m.path("fifo"), 0o644) == 0)
        #expect(mknod(m.path("sock"), S_IFSOCK | 0o600, 0) == 0)
        #expect(mknod(m.path("null"), S_IFCHR | 0o666, 0x103) == 0)  // makedev(1, 3)
        #expect(mknod(m.path("plain"), S_IFREG | 0o600, 0) == 0)
        var st = stat()
        #expect(stat(m.path("fifo"), &st) == 0)
        #expect(st.st_mode == S_IFIFO | (0o644 & ~processUmask()))
        #expect(stat(m.path("sock"), &st) == 0)
        #expect(st.st_mode == S_IFSOCK | (0o600 & ~processUmask()))
        #expect(stat(m.path("null"), &st) == 0)
        #expect(st.st_mode == S_IFCHR | (0o666 & ~processUmask()))
        #expect(st.st_rdev == 0x103)
        #expect(stat(m.path("plain"), &st) == 0)
        #expect(st.st_mode == S_IFREG | (0o600 & ~processUmask()))
        #expect(st.st_size == 0)
        // A FIFO's data never reaches the filesystem: the kernel is the pipe.
        let fd = open(m.path("fifo"), O_RDWR)
        try #require(fd >= 0)
        #expect(write(fd, "ping", 4) == 4)
        var buf = [UInt8](repeating: 0, count: 8)
        #expect(read(fd, &buf, 8) == 4)
        #expect(Array(buf[0..<4]) == Array("ping".utf8))
        close(fd)
        #expect(chmod(m.path("null"), 0o666) == 0)
        let ls = try sh("ls -l '\(m.mnt)'")
        #expect(ls.out.contains("prw-"), "\(ls.out)")
        #expect(ls.out.contains("srw-"), "\(ls.out)")
        #expect(ls.out.contains("crw-rw-rw- 1 root root 1, 3"), "\(ls.out)")
    }

    /// Without FUSE_CAP_HANDLE_KILLPRIV the kernel clears set-ID bits before an unprivileged
    /// write with a SETATTR; with allow_other, null-mount adds default_permissions, so the
    /// kernel checks modes.
    @Test func unprivilegedWriterLosesSetIDBitsAndMeetsModeChecks() throws {
        let m = try NullMountProcess(options: ["allow_other"])
        #expect(chmod(m.root, 0o755) == 0)  // mkdtemp's 0700 would stop "nobody" above the mount
        #expect(chmod(m.mnt, 0o777) == 0)
        #expect(writeFile(m.path("setid"), [1]) == 0)
        #expect(chmod(m.path("setid"), 0o6777) == 0)
        #expect(writeFile(m.path("private"), [2]) == 0)
        #expect(chmod(m.path("private"), 0o644) == 0)
        let asNobody = "setpriv --reuid=65534 --regid=65534 --clear-groups sh -c"
        let w = try sh("\(asNobody) 'echo more >> \(m.path("setid"))'")
        #expect(w.status == 0, "\(w.err)")
        var st = stat()
        #expect(stat(m.path("setid"), &st) == 0)
        #expect(st.st_mode == S_IFREG | 0o777)
        #expect(st.st_size == 6)
        let denied = try sh("\(asNobody) 'echo more >> \(m.path("private"))'")
        #expect(denied.status != 0)
        #expect(denied.err.contains("Permission denied"), "\(denied.err)")
        #expect(readFile(m.path("private")) == [2])
    }

    @Test func extendedAttributes() throws {
        let m = try NullMountProcess()
        let f = m.path("f")
        #expect(writeFile(f, [1]) == 0)
        let value = Array("a value\0with a NUL".utf8)
        #expect(setxattr(f, "user.one", value, value.count, 0) == 0)
        #expect(setxattr(f, "user.two", "2", 1, 0) == 0)
        #expect(errnoOf(setxattr(f, "user.one", "x", 1, slice_xattr_create)) == EEXIST)
        #expect(errnoOf(setxattr(f, "user.none", "x", 1, slice_xattr_replace)) == ENODATA)
        #expect(setxattr(f, "user.two", "22", 2, slice_xattr_replace) == 0)
        // Size 0 asks for the size; a buffer too small is ERANGE.
        #expect(getxattr(f, "user.one", nil, 0) == value.count)
        var small = [UInt8](repeating: 0, count: 3)
        #expect(errnoOf(Int32(getxattr(f, "user.one", &small, 3))) == ERANGE)
        var buf = [UInt8](repeating: 0, count: 64)
        #expect(getxattr(f, "user.one", &buf, 64) == value.count)
        #expect(Array(buf[0..<value.count]) == value)
        #expect(getxattr(f, "user.two", &buf, 64) == 2)
        #expect(Array(buf[0..<2]) == Array("22".utf8))
        #expect(errnoOf(Int32(getxattr(f, "user.none", &buf, 64))) == ENODATA)
        let names = Array("user.one\0user.two\0".utf8)
        #expect(listxattr(f, nil, 0) == names.count)
        #expect(xattrNames(f, bufferSize: 3).error == ERANGE)
        #expect(xattrNames(f, bufferSize: 64).names == names)
        #expect(removexattr(f, "user.one") == 0)
        #expect(errnoOf(removexattr(f, "user.one")) == ENODATA)
        #expect(xattrNames(f, bufferSize: 64).names == Array("user.two\0".utf8))
        // On a directory too.
        #expect(mkdir(m.path("d"), 0o755) == 0)
        #expect(setxattr(m.path("d"), "user.dir", "d", 1, 0) == 0)
        #expect(getxattr(m.path("d"), "user.dir", &buf, 64) == 1)
    }

    @Test func truncateFallocateAndSeekData() throws {
        let m = try NullMountProcess()
        let f = m.path("f")
        #expect(truncate(f, 10) == -1)  // no such file
        #expect(writeFile(f, [UInt8](repeating: 7, count: 8192)) == 0)
        #expect(truncate(f, 10_000) == 0)
        var bytes = try #require(readFile(f))
        #expect(bytes.count == 10_000)
        #expect(bytes[0..<8192].allSatisfy { $0 == 7 } && bytes[8192...].allSatisfy { $0 == 0 })
        #expect(truncate(f, 100) == 0)
        #expect(readFile(f) == [UInt8](repeating: 7, count: 100))
        #expect(errnoOf(truncate(f, off_t(NullFileSystem.maxFileSize) * 2)) == EFBIG)

        let fd = open(f, O_RDWR)
        try #require(fd >= 0)
        defer { close(fd) }
        var st = stat()
        #expect(slice_fallocate(fd, 0, 0, 20_000) == 0)
        #expect(fstat(fd, &st) == 0)
        #expect(st.st_size == 20_000)
        #expect(slice_fallocate(fd, slice_falloc_keep_size, 0, 50_000) == 0)
        #expect(fstat(fd, &st) == 0)
        #expect(st.st_size == 20_000)
        #expect(posix_fallocate(fd, 0, 30_000) == 0)
        #expect(fstat(fd, &st) == 0)
        #expect(st.st_size == 30_000)
        #expect(pwrite(fd, [UInt8](repeating: 9, count: 30_000), 30_000, 0) == 30_000)
        #expect(slice_fallocate(fd, slice_falloc_punch_hole | slice_falloc_keep_size, 4096, 8192) == 0)
        bytes = try #require(readFile(f))
        #expect(bytes.count == 30_000)
        #expect(bytes[0..<4096].allSatisfy { $0 == 9 })
        #expect(bytes[4096..<12288].allSatisfy { $0 == 0 })
        #expect(bytes[12288...].allSatisfy { $0 == 9 })
        #expect(errnoOf(slice_fallocate(fd, slice_falloc_punch_hole, 0, 10)) == EOPNOTSUPP)

        // Everything is data; the hole is the end.
        #expect(lseek(fd, 100, slice_seek_data) == 100)
        #expect(lseek(fd, 100, slice_seek_hole) == 30_000)
        #expect(errnoOf(Int32(lseek(fd, 30_000, slice_seek_data))) == ENXIO)
        #expect(lseek(fd, 0, SEEK_END) == 30_000)
    }

    @Test func mmapReadsAndWritesThroughTheFilesystem() throws {
        let m = try NullMountProcess()
        let f = m.path("mapped")
        let size = 3 * 4096 + 100
        let content = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        #expect(writeFile(f, content) == 0)
        let fd = open(f, O_RDWR)
        try #require(fd >= 0)
        defer { close(fd) }
        let ro = try #require(mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0))
        try #require(ro != MAP_FAILED)
        #expect(Array(UnsafeRawBufferPointer(start: ro, count: size)) == content)
        munmap(ro, size)
        let rw = try #require(mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0))
        try #require(rw != MAP_FAILED)
        let p = rw.assumingMemoryBound(to: UInt8.self)
        p[0] = 0xAA
        p[5000] = 0xBB
        p[size - 1] = 0xCC
        #expect(msync(rw, size, MS_SYNC) == 0)  // the pages go out as WRITE requests
        munmap(rw, size)
        // Drop the now clean pages so the read below asks the filesystem.
        _ = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)
        var expected = content
        expected[0] = 0xAA
        expected[5000] = 0xBB
        expected[size - 1] = 0xCC
        var back = [UInt8](repeating: 0, count: size)
        #expect(pread(fd, &back, size, 0) == size)
        #expect(back == expected)
    }

    @Test func shellToolsCopyAndCompareATree() throws {
        let m = try NullMountProcess()
        let src = m.root + "/src"
        let setup = try sh(
            """
            set -e
            mkdir -p '\(src)/sub/deeper' '\(src)/empty'
            printf 'hello\\n' > '\(src)/hello.txt'
            : > '\(src)/zero'
            head -c 300000 /dev/urandom > '\(src)/sub/random.bin'
            head -c 5000 /dev/urandom > '\(src)/sub/deeper/small'
            printf '#!/bin/sh\\necho run\\n' > '\(src)/script.sh'
            chmod 755 '\(src)/script.sh'
            chmod 600 '\(src)/zero'
            ln -s hello.txt '\(src)/link'
            ln '\(src)/hello.txt' '\(src)/sub/hard'
            touch -d '2001-02-03 04:05:06.123456789' '\(src)/sub/random.bin'
            """)
        try #require(setup.status == 0, "\(setup.err)")
        let cp = try sh("cp -a '\(src)' '\(m.mnt)/' && diff -r '\(src)' '\(m.mnt)/src'")
        #expect(cp.status == 0, "\(cp.out) \(cp.err)")
        let listing = "find . -printf '%P %y %m %n %s %T@ %l\\n' | sort"
        let here = try sh("cd '\(src)' && \(listing)")
        let there = try sh("cd '\(m.mnt)/src' && \(listing)")
        #expect(here.status == 0 && there.status == 0)
        #expect(here.out == there.out)
        let ls = try sh("ls -l '\(m.mnt)/src'")
        #expect(ls.status == 0)
        #expect(ls.out.contains("link -> hello.txt"), "\(ls.out)")
        #expect(ls.out.contains("-rwxr-xr-x 1"), "\(ls.out)")
        #expect(ls.out.contains("-rw-r--r-- 2"), "\(ls.out)")  // hello.txt, hard-linked
        #expect(!ls.out.contains("+"), "no ACLs: \(ls.out)")
        let run = try sh("'\(m.mnt)/src/script.sh'")
        #expect(run.out == "run\n")
        // And back out again.
        let back = try sh("cp -a '\(m.mnt)/src' '\(m.root)/back' && diff -r '\(src)' '\(m.root)/back'")
        #expect(back.status == 0, "\(back.out) \(back.err)")
        let rm = try sh("rm -r '\(m.mnt)/src' && ls -A '\(m.mnt)'")
        #expect(rm.status == 0 && rm.out.isEmpty, "\(rm.out) \(rm.err)")
    }

    /// 5,000 entries, listed whole and once each through readdirplus (`ls -f`, `ls -l`) and
    /// plain readdir (getdents64 with a small buffer); then every inode the kernel looked up
    /// is forgotten once the names are gone.
    @Test func largeDirectoryListsCompletelyAndForgetsEveryInode() throws {
        let m = try NullMountProcess()
        let dir = m.path("many")
        #expect(mkdir(dir, 0o755) == 0)
        var expected: Set<String> = []
        for i in 0..<5_000 {
            // Names of varied lengths, so that reply buffers end at varied places.
            let name = "entry-\(i)-" + String(repeating: "x", count: i % 37)
            expected.insert(name)
            let fd = open(dir + "/" + name, O_WRONLY | O_CREAT | O_EXCL, 0o644)
            try #require(fd >= 0, "create \(name): errno \(errno)")
            close(fd)
        }
        let lsF = try sh("ls -f '\(dir)'")
        let namesF = lsF.out.split(separator: "\n").map(String.init)
        #expect(namesF.count == 5_002)
        #expect(Set(namesF) == expected.union([".", ".."]))
        let lsL = try sh("ls -l '\(dir)' | tail -n +2 | awk '{print $NF}'")
        let namesL = lsL.out.split(separator: "\n").map(String.init)
        #expect(namesL.count == 5_000)
        #expect(Set(namesL) == expected)

        let raw = try getdentsNames(dir, bufferSize: 1024)
        #expect(raw.count == 5_002)
        #expect(Set(raw).count == raw.count, "duplicates")
        #expect(Set(raw) == expected.union([".", ".."]))

        // Lookup counting: with every name removed, the kernel gives back every lookup
        // (readdirplus and lookups alike) and the filesystem is down to its root.
        for name in expected { #expect(unlink(dir + "/" + name) == 0) }
        #expect(rmdir(dir) == 0)
        var inodes = -1
        for _ in 0..<1_000 {  // forgets travel asynchronously: up to 10 s
            var sv = statvfs()
            #expect(slice_statvfs(m.mnt, &sv) == 0)
            inodes = Int(sv.f_files - sv.f_ffree)
            if inodes == 1 { break }
            usleep(10_000)
        }
        #expect(inodes == 1)
    }

    @Test func concurrentClientsOnTheMultithreadedLoop() throws {
        let m = try NullMountProcess()
        let failures = Locked(0)
        DispatchQueue.concurrentPerform(iterations: 4) { t in
            for i in 0..<150 {
                let path = m.path("t\(t)-\(i)")
                let data = [UInt8](repeating: UInt8(t), count: 1000 + i)
                var ok = writeFile(path, data) == 0 && readFile(path) == data
                var st = stat()
                ok = ok && stat(path, &st) == 0 && st.st_size == data.count
                if i % 2 == 0 { ok = ok && unlink(path) == 0 }
                if !ok { failures.withLock { $0 += 1 } }
            }
        }
        #expect(failures.withLock { $0 } == 0)
        #expect(sortedNames(m.mnt).count == 4 * 75)
    }

    @Test func unmountWhileIdleEndsTheProcessCleanly() throws {
        let m = try NullMountProcess()
        var st = stat()
        #expect(stat(m.mnt, &st) == 0)
        #expect(st.st_ino == 1)
        #expect(mountCount(at: m.mnt) == 1)
        let status = try m.unmount()
        #expect(status == 0)
        #expect(mountCount(at: m.mnt) == 0)
        #expect(m.stderr.contains("unmounted"), "\(m.stderr)")
    }

    @Test func sigtermEndsTheProcessCleanly() throws {
        let m = try NullMountProcess()
        #expect(writeFile(m.path("f"), [1]) == 0)
        let status = m.stop(signal: SIGTERM)
        #expect(status == 0)
        #expect(mountCount(at: m.mnt) == 0)
    }

    @Test func mountOptions() throws {
        let bad = try NullMountProcess(options: ["attr_timeout=1"], expectFailure: true)
        #expect(bad.failureStatus == 2)
        #expect(bad.stderr.contains("unknown option"), "\(bad.stderr)")
        #expect(mountCount(at: bad.mnt) == 0)

        let ro = try NullMountProcess(options: ["ro"])
        #expect(errnoOf(open(ro.path("f"), O_WRONLY | O_CREAT, 0o644)) == EROFS)
        #expect(errnoOf(mkdir(ro.path("d"), 0o755)) == EROFS)
        #expect(try ro.unmount() == 0)

        let named = try NullMountProcess(options: ["fsname=bridge-test,subtype=bridgetest", "default_permissions"])
        let info = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        let line = info.split(separator: "\n").first { $0.contains(" \(named.mnt) ") }.map(String.init) ?? ""
        #expect(line.contains("fuse.bridgetest bridge-test"), "\(line)")
        #expect(line.contains("default_permissions"), "\(line)")
        #expect(try named.unmount() == 0)
    }
}

/// A `slice null-mount` process serving a fresh `NullFileSystem` on a temp directory. Mounted
/// once `init` returns (the process said so on stderr); unmounted and stopped by `deinit`
/// whatever a test did.
final class NullMountProcess: @unchecked Sendable {
    let root: String
    let mnt: String
    private let process = Process()
    private let errors = Pipe()
    /// What the process wrote on stderr so far (complete once it has exited).
    private(set) var stderr = ""
    /// Exit status when the mount was expected to fail (`expectFailure`).
    private(set) var failureStatus: Int32?

    init(options: [String] = [], expectFailure: Bool = false) throws {
        var template = Array("/tmp/slicenull-XXXXXX".utf8CString)
        root = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
        mnt = root + "/mnt"
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        process.executableURL = URL(fileURLWithPath: sliceExecutable)
        process.arguments = ["null-mount", mnt] + options.flatMap { ["-o", $0] }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        try process.run()
        // No timing: read until the process says it is mounted, or its output ends (it exited).
        while !stderr.contains("mounted at") {
            let chunk = errors.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            stderr += String(decoding: chunk, as: UTF8.self)
        }
        if !stderr.contains("mounted at") {
            process.waitUntilExit()
            failureStatus = process.terminationStatus
            if !expectFailure { throw TestFailure("null-mount failed: \(stderr)") }
        } else if expectFailure {
            throw TestFailure("null-mount with a bad option mounted")
        }
    }

    func path(_ p: String) -> String { mnt + "/" + p }

    /// `fusermount3 -u`, then the process's exit status.
    func unmount() throws -> Int32 {
        let r = try run("/bin/fusermount3", ["-u", mnt])
        guard r.status == 0 else { throw TestFailure("fusermount3 -u: \(r.err)") }
        return finish()
    }

    /// Sends `signal`, then returns the process's exit status.
    func stop(signal: Int32) -> Int32 {
        kill(process.processIdentifier, signal)
        return finish()
    }

    private func finish() -> Int32 {
        stderr += String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return process.terminationStatus
    }

    deinit {
        if process.isRunning {
            _ = try? run("/bin/fusermount3", ["-u", "-z", mnt])
            process.terminate()
            process.waitUntilExit()
        }
        if mountCount(at: mnt) > 0 { _ = try? run("/bin/fusermount3", ["-u", "-z", mnt]) }
        try? FileManager.default.removeItem(atPath: root)
    }
}

/// The umask of this process, read without changing it (tests run in parallel).
private func processUmask() -> mode_t {
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    let line = status.split(separator: "\n").first { $0.hasPrefix("Umask:") } ?? "Umask: 022"
    return mode_t(line.split(separator: "\t").last.flatMap { UInt32($0, radix: 8) } ?? 0o022)
}

private func statErrno(_ path: String) -> Int32 {
    var st = stat()
    return errnoOf(stat(path, &st))
}

/// listxattr into a buffer of `bufferSize` bytes: the names, or nil and the errno.
private func xattrNames(_ path: String, bufferSize: Int) -> (names: [UInt8]?, error: Int32) {
    var buf = [CChar](repeating: 0, count: bufferSize)
    let n = listxattr(path, &buf, bufferSize)
    return n < 0 ? (nil, errno) : (buf[0..<n].map { UInt8(bitPattern: $0) }, 0)
}

/// The names in a directory, sorted, without "." and "..".
private func sortedNames(_ dir: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
}

/// A symbolic link's target, or nil and the errno.
private func readlinkBytes(_ path: String) -> (target: [UInt8]?, error: Int32) {
    var buf = [CChar](repeating: 0, count: 4096)
    let n = readlink(path, &buf, 4096)
    return n < 0 ? (nil, errno) : (buf[0..<n].map { UInt8(bitPattern: $0) }, 0)
}

/// Lists a directory with raw getdents64 calls into a buffer of `bufferSize` bytes.
private func getdentsNames(_ dir: String, bufferSize: Int) throws -> [String] {
    let fd = open(dir, O_RDONLY | O_DIRECTORY)
    guard fd >= 0 else { throw TestFailure("open \(dir): errno \(errno)") }
    defer { close(fd) }
    var names: [String] = []
    var buffer = [UInt8](repeating: 0, count: bufferSize)
    while true {
        let n = buffer.withUnsafeMutableBytes { slice_getdents64(fd, $0.baseAddress, bufferSize) }
        guard n >= 0 else { throw TestFailure("getdents64: errno \(errno)") }
        if n == 0 { return names }
        // struct linux_dirent64 { u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
        var at = 0
        while at < n {
            let reclen = Int(buffer[at + 16]) | Int(buffer[at + 17]) << 8
            let nameBytes = buffer[(at + 19)..<(at + reclen)].prefix { $0 != 0 }
            names.append(String(decoding: nameBytes, as: UTF8.self))
            at += reclen
        }
    }
}
