import Foundation
import Testing

@testable import SliceKV

/// Mounts left by killed daemons: `slice mount` finds them in the kernel's mount table (not
/// with `stat`, which the kernel may answer from its cache) and takes them off before
/// mounting; `slice umount` takes off every mount stacked at the point.
@Suite(.serialized) struct StaleMountTests {
    /// The kernel caches the mount point's attributes for a second, so right after the kill
    /// `stat` still succeeds: the new mount must replace the dead one, not stack on it.
    @Test func remountRightAfterSIGKILLReplacesTheDeadMount() throws {
        let m = try MountedStore()
        for round in 0..<3 {
            let data = Array("written before kill \(round)".utf8)
            let fd = open(m.path("round\(round)"), O_WRONLY | O_CREAT, 0o644)
            #expect(data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == data.count)
            #expect(fsync(fd) == 0)
            close(fd)
            var st = stat()
            #expect(stat(m.mnt, &st) == 0)  // now cached
            let pid = try #require(lockHolder(of: m.data), "no daemon holds the store")
            #expect(kill(pid, SIGKILL) == 0)
            #expect(waitUntilGone(pid))
            try m.mount()
            #expect(mountCount(at: m.mnt) == 1, "round \(round)")
            for r in 0...round {
                #expect(readFile(m.path("round\(r)")) == Array("written before kill \(r)".utf8), "round \(round)")
            }
            #expect(writeFile(m.path("after\(round)"), [UInt8(round)]) == 0)
        }
        try m.unmount()
        #expect(mountCount(at: m.mnt) == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: m.mnt).isEmpty, "the bare mount point again")
        let db = try SliceDB(path: m.data)
        #expect(try db.get("after2") == [2])
        try db.close()
    }

    @Test func mountClearsEveryDeadMountStackedThere() throws {
        let m = try MountedStore()
        try m.unmount()
        for _ in 0..<3 { try stackDeadFuseMount(at: m.mnt) }
        #expect(mountCount(at: m.mnt) == 3)
        try m.mount()
        #expect(mountCount(at: m.mnt) == 1)
        #expect(writeFile(m.path("f"), [1, 2]) == 0)
        #expect(readFile(m.path("f")) == [1, 2])
        try m.unmount()
        #expect(mountCount(at: m.mnt) == 0)
    }

    /// Dead mounts on top of a live one (what stacking left): all go, and the live daemon
    /// closes its store.
    @Test func umountTakesOffEveryStackedMount() throws {
        let m = try MountedStore()
        #expect(writeFile(m.path("kept"), [7]) == 0)
        for _ in 0..<2 { try stackDeadFuseMount(at: m.mnt) }
        #expect(mountCount(at: m.mnt) == 3)
        let r = try run(sliceExecutable, ["umount", m.mnt])
        #expect(r.status == 0, "\(r.err)")
        #expect(mountCount(at: m.mnt) == 0)
        let db = try SliceDB(path: m.data)  // not `locked`: the daemon has closed it
        #expect(try db.get("kept") == [7])
        try db.close()
        try m.mount()  // MountedStore's bookkeeping: it unmounts at the end
        #expect(mountCount(at: m.mnt) == 1)
    }

    @Test func mountOverALiveMountIsRefused() throws {
        let m = try MountedStore()
        #expect(writeFile(m.path("f"), [1]) == 0)
        let other = m.root + "/other"
        let r = try run(sliceExecutable, ["mount", other, m.mnt])
        #expect(r.status == 2)
        #expect(r.err.contains("already mounted"), "\(r.err)")
        #expect(mountCount(at: m.mnt) == 1)
        #expect(readFile(m.path("f")) == [1])
        #expect(!FileManager.default.fileExists(atPath: other + "/CURRENT"))
    }

    @Test func umountOfAPlainDirectoryIsAnError() throws {
        let m = try MountedStore()
        try m.unmount()
        let r = try run(sliceExecutable, ["umount", m.mnt])
        #expect(r.status == 2)
        #expect(r.err.contains("is not a Slice mount"))
    }
}
