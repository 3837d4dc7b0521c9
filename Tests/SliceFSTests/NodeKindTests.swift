import Foundation
import Testing

@testable import SliceFS
@testable import SliceKV

/// What the rebuild on the low-level API brings, through the kernel, each compared with the
/// same operations on a local directory: hard links with the tools that make them, FIFOs and
/// sockets, sparse files at huge sizes with the daemon's memory flat, files unlinked while open.
@Suite(.serialized) struct NodeKindTests {
    /// Resident memory of the daemon, in KiB.
    func daemonRSS(_ m: MountedStore) -> Int {
        guard let pid = m.daemonPID(), let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        else { return -1 }
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
    }

    @Test func hardLinksWithCpRsyncAndGit() throws {
        let m = try MountedStore()
        let local = m.root + "/local"
        let script = """
            set -e
            head -c 200000 /dev/urandom > '\(m.root)/big.src'
            for base in '\(m.mnt)' '\(local)'; do
              mkdir -p "$base/src/d"
              for i in $(seq 1 30); do printf "file $i" > "$base/src/d/f$i"; done
              cp '\(m.root)/big.src' "$base/src/big"
              ln "$base/src/d/f1" "$base/src/d/f1.link"
              cp -al "$base/src" "$base/copy"
              rsync -a --link-dest="$base/src" "$base/src/" "$base/rs/"
              rm "$base/src/d/f2"
              (cd "$base" && find src copy rs -type f -printf '%p %n %s\\n' | sort) > "$base.list"
            done
            diff '\(m.mnt).list' '\(local).list'
            diff -r '\(m.mnt)/copy' '\(local)/copy'
            test "$(stat -c %i '\(m.mnt)/src/big')" = "$(stat -c %i '\(m.mnt)/copy/big')"
            test "$(stat -c %i '\(m.mnt)/src/big')" = "$(stat -c %i '\(m.mnt)/rs/big')"
            test "$(stat -c %h '\(m.mnt)/src/big')" = 3
            test "$(cat '\(m.mnt)/copy/d/f2')" = "file 2"
            git init -q '\(m.root)/repo' && cd '\(m.root)/repo' && cp '\(m.mnt)/src/big' . && git add big \\
              && git -c user.name=t -c user.email=t@t commit -qm one
            git clone -q '\(m.root)/repo' '\(m.mnt)/clone'
            cd '\(m.mnt)/clone' && git fsck 2>/dev/null && git status --porcelain | wc -l
            """
        let r = try sh(script)
        #expect(r.status == 0, "\(r.err.suffix(2000))")
        #expect(r.out.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
        try m.unmount()
        let db = try SliceDB(path: m.data)
        defer { try? db.close() }
        // Through the API every name of a linked file reads as its bytes.
        #expect(try db.get("copy/d/f1.link") == Array("file 1".utf8))
        #expect(try db.get("src/big") == db.get("rs/big"))
    }

    @Test func fifosSocketsAndDevices() throws {
        let m = try MountedStore()
        let script = """
            set -e
            mkfifo '\(m.mnt)/fifo'
            (echo through the fifo > '\(m.mnt)/fifo') &
            cat '\(m.mnt)/fifo'
            wait
            mknod '\(m.mnt)/null' c 1 3
            stat -c '%F %t:%T' '\(m.mnt)/null'
            python3 - <<'PY'
            import os, socket
            path = '\(m.mnt)/sock'
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.bind(path)
            server.listen(1)
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            client.connect(path)
            conn, _ = server.accept()
            client.sendall(b'over the socket')
            print(conn.recv(100).decode())
            print(os.stat(path).st_mode & 0o170000 == 0o140000)
            PY
            """
        let r = try sh(script)
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out == "through the fifo\ncharacter special file 1:3\nover the socket\nTrue\n")
        try m.unmount()
        try m.mount()
        let kinds = try sh("stat -c '%F' '\(m.mnt)/fifo' '\(m.mnt)/sock' '\(m.mnt)/null'").out
        #expect(kinds == "fifo\nsocket\ncharacter special file\n")
    }

    /// Sizes as ext4 answers them, and the daemon's memory flat whatever the size asked for.
    @Test func hugeSparseFilesKeepMemoryFlat() throws {
        let m = try MountedStore()
        let before = daemonRSS(m)
        let script = """
            set -e
            cd '\(m.mnt)'
            truncate -s 1T one-tib
            stat -c '%s %b' one-tib
            truncate -s $((1 << 50)) too-big 2>/dev/null && echo "no EFBIG" || echo EFBIG
            python3 - <<'PY'
            import errno, os
            fd = os.open('pw', os.O_CREAT | os.O_WRONLY, 0o644)
            os.pwrite(fd, b'abc', 1 << 40)
            # ext4 answers the same: EFBIG past its largest file, EINVAL where an offset overflows.
            for offset in ((1 << 44), (1 << 63) - 2):
                try:
                    os.pwrite(fd, b'abc', offset)
                    print('written')
                except OSError as e:
                    print(errno.errorcode[e.errno])
            os.close(fd)
            st = os.stat('pw')
            print(st.st_size, st.st_blocks <= 1024)
            fd = os.open('pw', os.O_RDONLY)
            print(os.lseek(fd, 0, os.SEEK_DATA) >= (1 << 40) - (1 << 16), os.pread(fd, 5, (1 << 40) - 2))
            PY
            fallocate -p -o 0 -l 1T one-tib
            dd if='\(m.mnt)/pw' bs=1 skip=$((1 << 40)) count=3 status=none
            """
        let r = try sh(script)
        #expect(r.status == 0, "\(r.err)")
        #expect(
            r.out
                == "1099511627776 0\nEFBIG\nEFBIG\nEINVAL\n\(1 << 40 + 3) True\nTrue b'\\x00\\x00abc'\nabc")
        let after = daemonRSS(m)
        #expect(after - before < 64 << 10, "RSS \(before) -> \(after) KiB")
    }

    @Test func openUnlinkedFilesAndMmap() throws {
        let m = try MountedStore()
        let script = """
            set -e
            cd '\(m.mnt)'
            python3 - <<'PY'
            import mmap, os
            fd = os.open('tmp', os.O_CREAT | os.O_RDWR, 0o600)
            os.write(fd, b'hello')
            os.unlink('tmp')
            st = os.fstat(fd)
            os.pwrite(fd, b' world', 5)
            os.ftruncate(fd, 11)
            os.fchmod(fd, 0o640)
            print(st.st_nlink, os.fstat(fd).st_size, oct(os.fstat(fd).st_mode & 0o777), os.pread(fd, 11, 0))
            os.close(fd)
            w = os.open('mapped', os.O_CREAT | os.O_WRONLY, 0o644)
            os.write(w, b'x' * 8192)
            fd = os.open('mapped', os.O_RDWR)
            mm = mmap.mmap(fd, 8192)
            mm[0:4] = b'MMAP'
            mm.flush()
            mm.close()
            os.close(fd)
            os.close(w)
            print(open('mapped', 'rb').read(6))
            PY
            """
        let r = try sh(script)
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out == "0 11 0o640 b'hello world'\nb'MMAPxx'\n")
        try m.unmount()
        let db = try SliceDB(path: m.data)
        defer { try? db.close() }
        #expect(try db.get("mapped").map { Array($0.prefix(6)) } == Array("MMAPxx".utf8))
        #expect(try db.scan(.all, keyspace: FSKeyspace.chunks).next().map { _ in true } == true)
    }
}
