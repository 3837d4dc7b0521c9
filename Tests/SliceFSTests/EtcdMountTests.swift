import Foundation
import Testing

@testable import SliceFS

#if canImport(Glibc)
    import Glibc
#endif

/// Trees in a real 3-member etcd cluster (`scripts/etcd-cluster.sh`, loopback ports), mounted
/// twice through the kernel by `slice mount etcd://…`: what one mount does, the other sees;
/// members, the leader and a mount's daemon are killed while writers run.
@Suite(.serialized) struct EtcdMountTests {
    /// `find` of a tree: names, kinds, modes, link counts, symlink targets, sizes and contents.
    static func listing(_ dir: String) throws -> [Substring] {
        let script =
            "cd '\(dir)' && find . -printf '%p %y %m %n %l\\n' | sort && find . -type f -printf '%p %s\\n' | sort && find . -type f -exec md5sum {} + | sort"
        return try sh(script).out.split(separator: "\n").filter { !$0.contains("./.") }
    }

    /// Checks every file a writer's ledger lists ("name md5" lines: writes `fsync`
    /// acknowledged) through each of `mounts`; returns how many it listed.
    static func checkLedger(_ ledger: String, through mounts: [MountedStore]) throws -> Int {
        let lines = String(decoding: readFile(ledger) ?? [], as: UTF8.self).split(separator: "\n")
        for line in lines {
            let parts = line.split(separator: " ")
            for m in mounts {
                let sum = try sh("md5sum < '\(m.path(String(parts[0])))' | cut -d' ' -f1").out
                #expect(sum.trimmingCharacters(in: .whitespacesAndNewlines) == parts[1], "\(parts[0]) via \(m.mnt)")
            }
        }
        return lines.count
    }

    @Test func twoMountsShareOneTree() throws {
        let cluster = try EtcdTestCluster()
        defer { cluster.stop() }
        let a = try MountedStore(source: cluster.url("share"))
        let b = try MountedStore(source: cluster.url("share"))
        let steps = """
            set -e
            cd '\(a.mnt)'
            mkdir -p d/e/f top
            printf 'one' > d/one.txt
            printf 'two' > d/e/two.txt
            head -c 300000 /dev/urandom > d/e/f/big.bin
            ln -s ../d/one.txt top/link
            ln d/one.txt top/hard
            mv d/e/two.txt top/moved.txt
            mv d/e top/e
            chmod 640 d/one.txt
            chmod 700 top/e
            setfattr -n user.colour -v blue d/one.txt
            mkfifo top/fifo
            printf 'gone' > d/gone && rm d/gone
            """
        let r = try sh(steps)
        #expect(r.status == 0, "\(r.err)")
        // The other mount agrees (at once in practice: the watch tells it; within the entry and
        // attribute timeout of 1 s at the latest).
        let expected = try EtcdMountTests.listing(a.mnt)
        #expect(expected.count > 10)
        #expect(try eventually(seconds: 3) { try EtcdMountTests.listing(b.mnt) == expected })
        #expect(try sh("getfattr --only-values -n user.colour '\(b.path("d/one.txt"))'").out == "blue")
        #expect(try sh("readlink '\(b.path("top/link"))'").out == "../d/one.txt\n")
        var st = stat()
        #expect(stat(b.path("top/hard"), &st) == 0 && st.st_nlink == 2)
        // And back: a change through the second mount reaches the first.
        #expect(try sh("printf 'rewritten' > '\(b.path("top/moved.txt"))' && rm '\(b.path("top/link"))'").status == 0)
        #expect(eventually(seconds: 3) { readFile(a.path("top/moved.txt")) == Array("rewritten".utf8) })
        #expect(eventually(seconds: 3) { access(a.path("top/link"), F_OK) != 0 })
        // A file open through one mount and unlinked (and freed) through the other: the open
        // descriptor answers ESTALE, as on NFS, never holes in place of the bytes.
        #expect(writeFile(b.path("open.txt"), Array("still here".utf8)) == 0)
        let fd = open(b.path("open.txt"), O_RDONLY)
        #expect(fd >= 0)
        var byte: UInt8 = 0
        #expect(pread(fd, &byte, 1, 0) == 1)
        #expect(unlink(a.path("open.txt")) == 0)
        #expect(eventually(seconds: 5) { pread(fd, &byte, 1, 0) < 0 && errno == ESTALE })
        close(fd)
        // Keys stay paths under the prefix: etcdctl lists the names a shell sees.
        let keys = try run(
            "/usr/bin/etcdctl", ["--endpoints", cluster.endpoints[0], "get", "--prefix", "share/", "--keys-only"],
            environment: ["ETCDCTL_API": "3"]
        ).out.split(separator: "\n").map(String.init).filter { !$0.isEmpty }.sorted()
        #expect(keys.contains("share/d/one.txt") && keys.contains("share/top/moved.txt"), "\(keys)")
        #expect(!keys.contains("share/d/gone"))
        // The key-value commands take the same URL: a file written by a mount reads as its bytes,
        // a value put there is a file in the mounts.
        let url = cluster.url("share")
        #expect(try run(sliceExecutable, ["get", url, "d/one.txt"]).out == "one")
        #expect(try run(sliceExecutable, ["put", url, "api/key", "from the api"]).status == 0)
        #expect(eventually(seconds: 3) { readFile(b.path("api/key")) == Array("from the api".utf8) })
        #expect(try run(sliceExecutable, ["scan", url, "--prefix", "api/"]).out == "api/key\tfrom the api\n")
        #expect(try run(sliceExecutable, ["delete", url, "api/key"]).status == 0)
        #expect(eventually(seconds: 3) { access(a.path("api/key"), F_OK) != 0 })
        // The control files speak of the cluster.
        let stats = String(decoding: readFile(a.path(".stats")) ?? [], as: UTF8.self)
        #expect(stats.contains("slice_etcd_member_up{endpoint=\"\(cluster.endpoints[0])\"} 1"), "\(stats.prefix(400))")
        #expect(stats.contains("slice_etcd_requests_total{op=\"txn\"}"))
        // B learned of A's changes from its watch (the 1 s kernel timeouts alone would pass the
        // comparisons above too).
        let bStats = String(decoding: readFile(b.path(".stats")) ?? [], as: UTF8.self)
        let remote = bStats.split(separator: "\n").first { $0.hasPrefix("slice_etcd_remote_changes_total ") }
        #expect((remote?.split(separator: " ").last).flatMap { Int($0) } ?? 0 > 5, "\(remote ?? "none")")
        let json = String(decoding: readFile(b.path(".stats.json")) ?? [], as: UTF8.self)
        #expect(json.contains("\"backend\":\"etcd\""), "\(json.prefix(300))")
        #expect(
            try sh("echo 1 > '\(a.path(".compact"))' && echo 1 > '\(a.path(".sync"))' && df '\(a.mnt)'").status == 0)
        try a.unmount()
        try b.unmount()
    }

    @Test func copyTreesInThroughOneMountAndOutThroughTheOther() throws {
        let cluster = try EtcdTestCluster()
        defer { cluster.stop() }
        let a = try MountedStore(source: cluster.url("copy"))
        let b = try MountedStore(source: cluster.url("copy"))
        let src = a.root + "/src"
        let make = """
            set -e
            mkdir -p '\(src)' && cd '\(src)'
            for d in $(seq 0 5); do mkdir -p "d$d/sub"; for f in $(seq 0 9); do printf "file $d $f" > "d$d/f$f"; done; done
            for f in $(seq 0 4); do head -c 200000 /dev/urandom > "d$f/sub/mid$f"; ln -s "../d0/f$f" "d1/link$f"; : > "empty$f"; done
            head -c 3000000 /dev/urandom > big.bin
            chmod 600 d0/f0; chmod 755 d1/f1
            """
        #expect(try sh(make).status == 0)
        let checks = """
            set -e
            cp -a '\(src)' '\(a.mnt)/cp'
            diff -r '\(src)' '\(b.mnt)/cp'
            rsync -a '\(src)/' '\(a.mnt)/rs/'
            rsync -a '\(b.mnt)/rs/' '\(a.root)/back/'
            diff -r '\(src)' '\(a.root)/back'
            (cd '\(src)' && find . -printf '%p %m %l\\n' | sort) > '\(a.root)/x.txt'
            (cd '\(b.mnt)/rs' && find . -printf '%p %m %l\\n' | sort) > '\(a.root)/y.txt'
            diff '\(a.root)/x.txt' '\(a.root)/y.txt'
            """
        let r = try sh(checks)
        #expect(r.status == 0, "\(r.err) \(r.out.prefix(2000))")
    }

    /// Writers through both mounts while a member, then the leader, is killed and revived: every
    /// write that `fsync` acknowledged is there afterwards, through either mount; with two
    /// members down the mounts answer EIO after a few seconds instead of hanging, and serve again
    /// once a quorum is back.
    @Test func membersAndTheLeaderDieWhileWritersRun() throws {
        let cluster = try EtcdTestCluster()
        defer { cluster.stop() }
        let a = try MountedStore(source: cluster.url("kill"))
        let b = try MountedStore(source: cluster.url("kill"))
        // Each writer writes files with fsync and notes each acknowledged one in its ledger.
        func writer(_ m: MountedStore, _ tag: String) -> String {
            """
            i=0; while [ ! -e '\(a.root)/stop' ]; do i=$((i+1)); f='\(m.mnt)/\(tag)-'$i
            head -c $((i * 997 % 70000 + 1)) /dev/urandom > '\(m.root)/tmp-\(tag)'
            if dd if='\(m.root)/tmp-\(tag)' of="$f" conv=fsync status=none 2>/dev/null; then
              echo "\(tag)-$i $(md5sum < '\(m.root)/tmp-\(tag)' | cut -d' ' -f1)" >> '\(a.root)/ledger-\(tag)'
            fi; done
            """
        }
        let wa = Process()
        wa.executableURL = URL(fileURLWithPath: "/bin/bash")
        wa.arguments = ["-c", writer(a, "a")]
        let wb = Process()
        wb.executableURL = URL(fileURLWithPath: "/bin/bash")
        wb.arguments = ["-c", writer(b, "b")]
        try wa.run()
        try wb.run()
        sleep(1)
        let first = try #require(try cluster.leader())
        let follower = first % 3 + 1
        try cluster.kill(follower)
        sleep(2)
        try cluster.revive(follower)
        sleep(2)
        let leader = try #require(try cluster.leader())
        try cluster.kill(leader)
        sleep(3)
        try cluster.revive(leader)
        sleep(2)
        _ = FileManager.default.createFile(atPath: a.root + "/stop", contents: nil)
        wa.waitUntilExit()
        wb.waitUntilExit()
        var checked = 0
        for tag in ["a", "b"] {
            checked += try EtcdMountTests.checkLedger(a.root + "/ledger-\(tag)", through: [a, b])
        }
        #expect(checked > 20, "acknowledged writes: \(checked)")
        // No quorum: a clear error within seconds, not a hang.
        try cluster.kill(1)
        try cluster.kill(2)
        let started = Date()
        let failed = try run("/usr/bin/timeout", ["60", "/bin/sh", "-c", "echo x > \"$0\"", a.path("noquorum")])
        let waited = Date().timeIntervalSince(started)
        #expect(failed.status != 0 && failed.status != 124, "status \(failed.status): \(failed.err)")
        #expect(failed.err.contains("Input/output error"), "\(failed.err)")
        #expect(waited < 30, "waited \(waited) s")
        try cluster.revive(1)
        try cluster.revive(2)
        #expect(
            try eventually(seconds: 20) {
                try sh("echo back > '\(a.path("after"))' && cat '\(b.path("after"))'").out == "back\n"
            })
        try a.unmount()
        try b.unmount()
    }

    /// A mount's daemon killed while it writes leaves a tree every other mount reads whole, and
    /// a remount finds every fsynced file.
    @Test func killedDaemonLeavesAConsistentTree() throws {
        let cluster = try EtcdTestCluster()
        defer { cluster.stop() }
        let a = try MountedStore(source: cluster.url("crash"))
        let b = try MountedStore(source: cluster.url("crash"))
        let w = Process()
        w.executableURL = URL(fileURLWithPath: "/bin/bash")
        w.arguments = [
            "-c",
            """
            i=0; while true; do i=$((i+1)); mkdir -p '\(a.mnt)/d'$((i % 7))
            head -c $((i * 7919 % 300000 + 1)) /dev/urandom > '\(a.root)/tmp'
            if dd if='\(a.root)/tmp' of='\(a.mnt)/d'$((i % 7))/f$i conv=fsync status=none 2>/dev/null; then
              echo "d$((i % 7))/f$i $(md5sum < '\(a.root)/tmp' | cut -d' ' -f1)" >> '\(a.root)/ledger'
            else exit 0; fi; done
            """,
        ]
        try w.run()
        sleep(3)
        let pid = try #require(a.daemonPID())
        Glibc.kill(pid, SIGKILL)
        w.waitUntilExit()
        _ = waitUntilGone(pid)
        // The other mount reads every file whole.
        #expect(try sh("find '\(b.mnt)' -type f -not -name '.*' -exec cat {} + > /dev/null").status == 0)
        try a.mount()
        let checked = try EtcdMountTests.checkLedger(a.root + "/ledger", through: [a])
        #expect(checked > 5, "fsynced files: \(checked)")
        #expect(try EtcdMountTests.listing(a.mnt) == EtcdMountTests.listing(b.mnt))
        try a.unmount()
        try b.unmount()
    }

    /// The randomized model test (the same operations on the mount and on a local directory).
    @Test func randomOperationsMatchALocalDirectory() throws {
        let cluster = try EtcdTestCluster()
        defer { cluster.stop() }
        let m = try MountedStore(source: cluster.url("model"))
        // Each step lists the tree through the mount (hundreds of etcd round trips in a debug
        // build): 150 steps here, more with SLICE_ETCD_MODEL_STEPS.
        let steps = Int(ProcessInfo.processInfo.environment["SLICE_ETCD_MODEL_STEPS"] ?? "") ?? 150
        try MountTests.randomOperationsMatchALocalDirectory(on: m, steps: steps)
        try m.unmount()
    }

    /// A cluster with etcd's default limits (128 operations, 1.5 MiB a request): large files
    /// still work (commits are cut to fit); a directory too large to rename in one transaction
    /// answers EXDEV, so `mv` moves it file by file; bad URLs and a cluster nobody answers for
    /// get clear errors.
    @Test func clusterLimitsAndBadURLs() throws {
        let cluster = try EtcdTestCluster()
        defer { cluster.stop() }
        let m = try MountedStore(source: cluster.url("limits", query: "max_txn_ops=128&max_request_bytes=1572864"))
        let r = try sh(
            """
            set -e
            head -c 5000000 /dev/urandom > '\(m.root)/big' && cp '\(m.root)/big' '\(m.mnt)/big' && cmp '\(m.root)/big' '\(m.mnt)/big'
            mkdir '\(m.mnt)/many' && for i in $(seq 1 150); do echo $i > '\(m.mnt)/many/'$i; done
            python3 -c "import os,errno
            try:
                os.rename('\(m.mnt)/many', '\(m.mnt)/moved'); print('renamed')
            except OSError as e: print(errno.errorcode[e.errno])"
            mv '\(m.mnt)/many' '\(m.mnt)/moved'
            ls '\(m.mnt)/moved' | wc -l
            """)
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out == "EXDEV\n150\n", "\(r.out)")
        try m.unmount()
        let bad = try run(sliceExecutable, ["mount", "etcd://nohost/x", m.mnt])
        #expect(bad.status != 0 && bad.err.contains("not HOST:PORT"), "\(bad.err)")
        let empty = try run(sliceExecutable, ["mount", "etcd://127.0.0.1:2379/", m.mnt])
        #expect(empty.status != 0 && empty.err.contains("PREFIX"), "\(empty.err)")
        let opt = try run(sliceExecutable, ["mount", cluster.url("x"), m.mnt, "-o", "cache_mb=5"])
        #expect(opt.status != 0 && opt.err.contains("embedded store"), "\(opt.err)")
        let nobody = try run(sliceExecutable, ["mount", "etcd://127.0.0.1:1/x", m.mnt])
        #expect(nobody.status != 0 && nobody.err.contains("etcd cluster"), "\(nobody.err)")
    }
}
