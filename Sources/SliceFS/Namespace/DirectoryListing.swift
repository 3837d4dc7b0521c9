import SliceKV

#if canImport(Glibc)
    import Glibc
#endif

/// The entries of one directory as `readdir` collects them: each name once, with its type.
///
/// A name can arrive twice (a key that is a file and also has keys below it, a directory that
/// has both a `mkdir` record and content, the pieces of long names); a directory wins over a
/// file. Names are stored NUL-terminated in one byte buffer and found again through a small
/// open-addressing table of indices, so a listing of 100,000 entries allocates a few growing
/// buffers rather than an array and a dictionary node per name (a `[[UInt8]: mode_t]`
/// dictionary measured as half of a large `readdir`). Not thread-safe: one per call.
struct DirectoryListing {
    /// Names, each followed by a NUL byte.
    private var bytes: [UInt8] = []
    /// Offset of each name in `bytes`, in the order added.
    private var starts: [Int32] = []
    private var modes: [mode_t] = []
    private var inos: [UInt64] = []
    /// Entry index per slot, -1 when empty; linear probing, kept under 70% full.
    private var slots = [Int32](repeating: -1, count: 1024)

    private func name(_ i: Int) -> UnsafeRawBufferPointer {
        bytes.withUnsafeBytes { b in
            let start = Int(starts[i])
            let end = i + 1 < starts.count ? Int(starts[i + 1]) - 1 : b.count - 1
            return UnsafeRawBufferPointer(rebasing: b[start..<end])
        }
    }

    var count: Int { starts.count }

    /// Adds `name` with `mode` and inode number, or updates an existing entry: a directory wins
    /// over anything else (a key with keys below it lists as a directory), and an
    /// `authoritative` number (from an entry record) replaces a derived one of the same kind.
    mutating func add(_ name: UnsafeRawBufferPointer, _ mode: mode_t, ino: UInt64, authoritative: Bool = false) {
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: BloomFilter.hash(name)) & mask
        while true {
            let i = Int(slots[slot])
            if i < 0 { break }
            if bytes.withUnsafeBytes({ b -> Bool in
                let start = Int(starts[i])
                let end = i + 1 < starts.count ? Int(starts[i + 1]) - 1 : b.count - 1
                return end - start == name.count && memcmp(b.baseAddress! + start, name.baseAddress!, name.count) == 0
            }) {
                if mode == S_IFDIR && modes[i] != S_IFDIR {
                    modes[i] = S_IFDIR
                    inos[i] = ino
                } else if authoritative && (modes[i] != S_IFDIR || mode == S_IFDIR) {
                    modes[i] = mode
                    inos[i] = ino
                }
                return
            }
            slot = (slot + 1) & mask
        }
        slots[slot] = Int32(starts.count)
        starts.append(Int32(bytes.count))
        bytes.append(contentsOf: name)
        bytes.append(0)
        modes.append(mode)
        inos.append(ino)
        if starts.count * 10 > slots.count * 7 { rehash() }
    }

    mutating func add(_ name: [UInt8], _ mode: mode_t, ino: UInt64, authoritative: Bool = false) {
        name.withUnsafeBytes { add($0, mode, ino: ino, authoritative: authoritative) }
    }

    private mutating func rehash() {
        slots = [Int32](repeating: -1, count: slots.count * 2)
        let mask = slots.count - 1
        for i in starts.indices {
            var slot = Int(truncatingIfNeeded: BloomFilter.hash(name(i))) & mask
            while slots[slot] >= 0 { slot = (slot + 1) & mask }
            slots[slot] = Int32(i)
        }
    }

    /// Calls `body` with each name, its type, inode number and index, in the order added, from
    /// entry `start` on, until it returns false.
    func forEach(from start: Int = 0, _ body: (UnsafeRawBufferPointer, mode_t, UInt64, Int) throws -> Bool) rethrows {
        guard start < starts.count else { return }
        try bytes.withUnsafeBytes { b in
            for i in start..<starts.count {
                let first = Int(starts[i])
                let end = i + 1 < starts.count ? Int(starts[i + 1]) - 1 : b.count - 1
                if try !body(UnsafeRawBufferPointer(rebasing: b[first..<end]), modes[i], inos[i], i) { return }
            }
        }
    }
}
