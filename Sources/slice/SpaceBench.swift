import Foundation
import Histogram
import SliceKV

#if canImport(Glibc)
    import Glibc
#endif

extension Bench {
    /// `overwritehot`: `--num` puts of `--value_size` bytes spread at random over `--hot_keys`
    /// keys (1: the same key every time), with the disk use of the store directory sampled
    /// every `--sample_every` puts. Why: a store that keeps overwritten values grows without
    /// bound under this workload (a file rewritten in place through a mount), so its peak disk
    /// use matters as much as its speed. Prints the peak and final disk use (allocated blocks),
    /// the live bytes (`--hot_keys` x `--value_size`) and the bytes this process had written to
    /// the disk (`/proc/self/io`).
    func runOverwriteHot(_ store: SliceDB) throws -> Result {
        let value = benchValue()
        let hot = max(1, hotKeys)
        var rng: UInt64 = 0x2545_F491_4F6C_DD1D
        var k: [UInt8] = []
        var hist = Bench.histogram()
        let ioBefore = ProcessIO.current()
        var peak = DiskUse.allocatedBytes(db)
        let start = DispatchTime.now().uptimeNanoseconds
        for i in 0..<num {
            rng ^= rng << 13
            rng ^= rng >> 7
            rng ^= rng << 17
            Bench.dbBenchKey(hot == 1 ? 0 : Int(rng % UInt64(hot)), keySize: keySize, into: &k)
            let s = DispatchTime.now().uptimeNanoseconds
            try store.put(k, value)
            _ = hist.record(DispatchTime.now().uptimeNanoseconds - s)
            if (i + 1) % max(1, sampleEvery) == 0 { peak = max(peak, DiskUse.allocatedBytes(db)) }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let final = DiskUse.allocatedBytes(db)
        peak = max(peak, final)
        let io = ProcessIO.current()
        if !json {
            let mib = { (b: UInt64) in String(format: "%.1f MiB", Double(b) / 1_048_576) }
            print(
                "overwritehot: live \(mib(UInt64(hot * valueSize))), disk peak \(mib(peak)), final \(mib(final)); "
                    + "process wrote \(mib(io.writeBytes &- ioBefore.writeBytes)) to disk, "
                    + "\(mib(io.wchar &- ioBefore.wchar)) through write calls")
        }
        return Result(
            name: "overwritehot", ops: num, seconds: seconds, bytes: num * (keySize + valueSize), found: nil,
            perThread: [Double(num) / seconds], latency: hist)
    }
}

/// Disk use of a directory's files, as `du` counts it: allocated blocks, not lengths.
enum DiskUse {
    static func allocatedBytes(_ dir: String) -> UInt64 {
        var total: UInt64 = 0
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
            var st = stat()
            if stat("\(dir)/\(name)", &st) == 0 { total += UInt64(st.st_blocks) * 512 }
        }
        return total
    }
}

/// This process's I/O counters (`/proc/self/io`): `write_bytes` is what it caused to be
/// written to storage, `wchar` what it passed to write calls (mapped writes are in neither).
struct ProcessIO {
    var writeBytes: UInt64 = 0
    var wchar: UInt64 = 0

    static func current() -> ProcessIO {
        var io = ProcessIO()
        guard let text = try? String(contentsOfFile: "/proc/self/io", encoding: .utf8) else { return io }
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":").map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, let v = UInt64(parts[1]) else { continue }
            if parts[0] == "write_bytes" { io.writeBytes = v }
            if parts[0] == "wchar" { io.wchar = v }
        }
        return io
    }
}
