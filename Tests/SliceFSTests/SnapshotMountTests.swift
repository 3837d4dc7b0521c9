import Foundation
import Testing

@testable import SliceFS
@testable import SliceKV

/// `.snapshots` in a real mount: snapshots taken with mkdir while other processes write, backed
/// up with `cp -a`, read-only, kept across remounts, visible to the CLI and in `.stats`.
@Suite(.serialized) struct SnapshotMountTests {
    /// Everything `cp -a` keeps that a backup must match, one line per entry, sorted: path,
    /// type, mode, size, mtime, symlink target, xattrs, content digest.
    func manifest(_ root: String) throws -> [String] {
        var lines = try sh("cd '\(root)' && find . -mindepth 1 -printf '%p %y %m %s %T@ %l\\n' | sort").out
            .split(separator: "\n").map(String.init)
        let sums = try sh("cd '\(root)' && find . -type f -print0 | sort -z | xargs -0 -r md5sum")
        lines += sums.out.split(separator: "\n").map { "sum " + $0 }
        let attrs = try sh("cd '\(root)' && getfattr -R -d -m - . 2>/dev/null | grep -v '^$' || true")
        lines += attrs.out.split(separator: "\n").map { "xattr " + $0 }
        return lines
    }

    /// A ledger written by one process, file c(i mod 10) replaced by `i` (write + rename) for
    /// i = 1, 2, ...: any instant's tree has, for the largest value m present, every file at
    /// the last i ≤ m of its residue. Returns what is wrong, if anything.
    func ledgerProblems(_ dir: String) -> String? {
        var values: [Int: Int] = [:]
        for j in 0..<10 {
            guard let b = readFile("\(dir)/c\(j)") else { continue }
            guard let v = Int(String(decoding: b, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else {
                return "c\(j) holds \(b)"
            }
            values[j] = v
        }
        guard let m = values.values.max() else { return "empty ledger" }
        for j in 0..<10 {
            let last = m - ((m - j) % 10 + 10) % 10
            let expected: Int? = last >= 1 ? last : nil
            if values[j] != expected {
                return
                    "c\(j) = \(values[j].map(String.init) ?? "absent"), expected \(expected.map(String.init) ?? "absent") (max \(m))"
            }
        }
        return nil
    }

    @Test func backupOfASnapshotWhileWritersContinueEqualsTheTreeAtThatInstant() throws {
        let m = try MountedStore()
        let backup = m.root + "/backup"
        let before = m.root + "/before"
        // A tree with every kind of thing cp -a keeps.
        try sh(
            """
            set -e
            cd '\(m.mnt)'
            mkdir -p tree/sub/deeper ledger
            head -c 300000 /dev/urandom > tree/large.bin
            echo small > tree/small.txt
            printf 'x%.0s' $(seq 1 5000) > tree/sub/medium.txt
            ln -s ../small.txt tree/sub/link
            ln tree/small.txt tree/hardlink
            chmod 0640 tree/small.txt
            chmod 0700 tree/sub/deeper
            setfattr -n user.colour -v blue tree/large.bin
            touch -d '2001-02-03 04:05:06' tree/sub/medium.txt
            """)
        #expect(try sh("cp -a '\(m.path("tree"))' '\(before)'").status == 0)
        // The writer: replaces ledger files as fast as it can until told to stop.
        let stop = m.root + "/stop"
        let writer = Process()
        writer.executableURL = URL(fileURLWithPath: "/bin/bash")
        writer.arguments = [
            "-c",
            """
            cd '\(m.path("ledger"))'; i=0
            while [ ! -e '\(stop)' ]; do i=$((i+1)); echo $i > t; mv t c$((i % 10)); done
            """,
        ]
        try writer.run()
        defer {
            _ = FileManager.default.createFile(atPath: stop, contents: nil)
            writer.waitUntilExit()
        }
        Thread.sleep(forTimeInterval: 0.5)
        #expect(mkdir(m.path(".snapshots/s1"), 0o755) == 0)
        // The live tree changes after the snapshot; the snapshot must not.
        try sh(
            """
            cd '\(m.mnt)/tree' && echo more >> small.txt && rm sub/medium.txt && chmod 0600 large.bin \
              && setfattr -n user.colour -v red large.bin && mv sub sub2 && echo new > new.txt
            """)
        // Backed up while the ledger keeps changing.
        let cp = try sh("cp -a '\(m.path(".snapshots/s1"))' '\(backup)'")
        #expect(cp.status == 0, "\(cp.err)")
        _ = FileManager.default.createFile(atPath: stop, contents: nil)
        writer.waitUntilExit()

        #expect(ledgerProblems(m.path(".snapshots/s1/ledger")) == nil)
        #expect(ledgerProblems(backup + "/ledger") == nil)
        #expect(try manifest(backup + "/tree") == manifest(before))
        #expect(try manifest(m.path(".snapshots/s1/tree")) == manifest(before))
        #expect(try sh("diff -r '\(m.path(".snapshots/s1"))' '\(backup)'").status == 0)
        // The hard link is one inode in the snapshot too.
        var a = stat()
        var b = stat()
        #expect(
            stat(m.path(".snapshots/s1/tree/small.txt"), &a) == 0
                && stat(m.path(".snapshots/s1/tree/hardlink"), &b) == 0)
        #expect(a.st_ino == b.st_ino && a.st_nlink == 2)
        #expect(try sh("readlink '\(m.path(".snapshots/s1/tree/sub/link"))'").out == "../small.txt\n")
        // And the live tree did change.
        #expect(readFile(m.path("tree/new.txt")) == Array("new\n".utf8))
    }

    @Test func snapshotsAreReadOnlyListedKeptAcrossRemountsAndVisibleToTheCLI() throws {
        let m = try MountedStore()
        #expect(writeFile(m.path("file"), Array("one".utf8)) == 0)
        #expect(mkdir(m.path("dir"), 0o755) == 0)
        #expect(writeFile(m.path("dir/inner"), Array("two".utf8)) == 0)
        // A file still open for writing: what was written before the mkdir is in the snapshot.
        let fd = open(m.path("open.txt"), O_WRONLY | O_CREAT, 0o644)
        #expect(fd >= 0)
        #expect(write(fd, "written", 7) == 7)
        #expect(mkdir(m.path(".snapshots/a"), 0o755) == 0)
        #expect(write(fd, " later", 6) == 6)
        close(fd)
        #expect(readFile(m.path(".snapshots/a/open.txt")) == Array("written".utf8))
        #expect(readFile(m.path(".snapshots/a/file")) == Array("one".utf8))
        #expect(errnoOf(mkdir(m.path(".snapshots/a"), 0o755)) == EEXIST)
        #expect(errnoOf(mkdir(m.path(".snapshots/.bad"), 0o755)) == EINVAL)
        #expect(mkdir(m.path(".snapshots/b"), 0o755) == 0)
        // Hidden from the root's listing (cp -a and rsync of the mount skip it), reachable by name.
        #expect(!(try sh("ls -a '\(m.mnt)'").out.contains(".snapshots")))
        #expect(try sh("cd '\(m.mnt)' && cd .snapshots && pwd").status == 0)
        #expect(try sh("ls '\(m.path(".snapshots"))'").out == "a\nb\n")

        // Nothing in a snapshot changes.
        #expect(errnoOf(open(m.path(".snapshots/a/new"), O_WRONLY | O_CREAT, 0o644)) == EROFS)
        #expect(errnoOf(open(m.path(".snapshots/a/file"), O_WRONLY)) == EROFS)
        #expect(errnoOf(open(m.path(".snapshots/a/file"), O_RDONLY | O_TRUNC)) == EROFS)
        #expect(errnoOf(unlink(m.path(".snapshots/a/file"))) == EROFS)
        #expect(errnoOf(mkdir(m.path(".snapshots/a/dir/x"), 0o755)) == EROFS)
        #expect(errnoOf(rmdir(m.path(".snapshots/a/dir"))) == EROFS)
        #expect(errnoOf(chmod(m.path(".snapshots/a/file"), 0o777)) == EROFS)
        #expect(errnoOf(symlink("x", m.path(".snapshots/a/sym"))) == EROFS)
        #expect(errnoOf(rename(m.path(".snapshots/a/file"), m.path(".snapshots/a/moved"))) == EROFS)
        #expect(errnoOf(rename(m.path("file"), m.path(".snapshots/a/file2"))) == EXDEV)
        #expect(errnoOf(link(m.path(".snapshots/a/file"), m.path("hard"))) == EXDEV)
        #expect(errnoOf(truncate(m.path(".snapshots/a/file"), 0)) == EROFS)
        #expect(errnoOf(rmdir(m.path(".snapshots"))) == EBUSY)
        #expect(readFile(m.path(".snapshots/a/dir/inner")) == Array("two".utf8))

        // Space and counts in .stats.
        let stats = String(decoding: readFile(m.path(".stats")) ?? [], as: UTF8.self)
        #expect(stats.contains("slice_snapshots 2"), "\(stats.prefix(300))")
        #expect(stats.contains("slice_snapshot_bytes{name=\"a\"}"))

        #expect(rmdir(m.path(".snapshots/b")) == 0)
        #expect(errnoOf(rmdir(m.path(".snapshots/b"))) == ENOENT)
        #expect(try sh("ls '\(m.path(".snapshots"))'").out == "a\n")

        // Kept across a remount; the CLI sees the same snapshot.
        try m.unmount()
        #expect(try sh("'\(sliceExecutable)' snapshot list '\(m.data)' | cut -f1").out == "a\n")
        #expect(try run(sliceExecutable, ["get", m.data, "dir/inner", "--snapshot", "a"]).out == "two")
        try m.mount()
        #expect(readFile(m.path(".snapshots/a/open.txt")) == Array("written".utf8))
        #expect(readFile(m.path("open.txt")) == Array("written later".utf8))
        #expect(rmdir(m.path(".snapshots/a")) == 0)
        try m.unmount()
        #expect(try sh("'\(sliceExecutable)' snapshot list '\(m.data)'").out == "")
        let made = try run(sliceExecutable, ["snapshot", "create", m.data, "cli"])
        #expect(made.status == 0, "\(made.err)")
        try m.mount(options: ["snapdir=visible"])
        #expect(readFile(m.path(".snapshots/cli/file")) == Array("one".utf8))
        #expect(try sh("ls -a '\(m.mnt)'").out.contains(".snapshots"))
        #expect(try sh("ls -la '\(m.mnt)' | grep -c ' \\.snapshots$'").out == "1\n")
    }
}
