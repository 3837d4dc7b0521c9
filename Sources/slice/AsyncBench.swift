import Foundation
import Histogram
import SliceKV

extension Bench {
    /// The async-API variant: `--threads` tasks in one task group drive the store through
    /// `LSMTree` (whose disk work runs on SliceKV's I/O threads). Returns nil for benchmarks
    /// that have no async variant (they run synchronously).
    func runAsync(_ name: String, _ store: SliceDB) throws -> Result? {
        let writes = ["fillseq", "fillrandom", "overwrite", "deleteseq", "deleterandom"]
        let readsNames = ["readrandom", "readhot", "readmissing"]
        guard writes.contains(name) || readsNames.contains(name) else { return nil }
        let tree = LSMTree(store)
        let total = readsNames.contains(name) ? (reads ?? num) : num
        let tasks = threads
        let num = self.num
        let value = benchValue()
        let keySize = self.keySize
        let outcome = Locked<Result?>(nil)
        let failure = Locked<Error?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            do {
                let start = DispatchTime.now().uptimeNanoseconds
                let parts = try await withThrowingTaskGroup(
                    of: (ops: Int, bytes: Int, found: Int, seconds: Double, hist: Histogram<UInt64>).self
                ) { group in
                    for t in 0..<tasks {
                        group.addTask {
                            var rng = UInt64(0x2545_F491_4F6C_DD1D) &+ UInt64(t) &* 0x9E37_79B9
                            var hist = Bench.histogram()
                            var bytes = 0
                            var found = 0
                            var k: [UInt8] = []
                            let t0 = DispatchTime.now().uptimeNanoseconds
                            for i in 0..<total {
                                rng ^= rng << 13
                                rng ^= rng >> 7
                                rng ^= rng << 17
                                let random = Int(rng % UInt64(num))
                                let index =
                                    name == "fillseq" || name == "deleteseq"
                                    ? i : name == "readhot" ? random % max(1, num / 100) : random
                                Bench.dbBenchKey(index, keySize: keySize, into: &k)
                                if name == "readmissing" { k.append(UInt8(ascii: ".")) }
                                let s = DispatchTime.now().uptimeNanoseconds
                                if name.hasPrefix("delete") {
                                    try await tree.delete(k)
                                    bytes += k.count
                                } else if name.hasPrefix("read") {
                                    if let v = try await tree.get(k) {
                                        found += 1
                                        bytes += k.count + v.count
                                    }
                                } else {
                                    try await tree.put(k, value)
                                    bytes += k.count + value.count
                                }
                                _ = hist.record(DispatchTime.now().uptimeNanoseconds - s)
                            }
                            let secs = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                            return (total, bytes, found, secs, hist)
                        }
                    }
                    var all: [(ops: Int, bytes: Int, found: Int, seconds: Double, hist: Histogram<UInt64>)] = []
                    for try await p in group { all.append(p) }
                    return all
                }
                let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                var merged = Bench.histogram()
                for p in parts { merged.add(p.hist) }
                outcome.withLock {
                    $0 = Result(
                        name: name, ops: parts.reduce(0) { $0 + $1.ops }, seconds: elapsed,
                        bytes: parts.reduce(0) { $0 + $1.bytes },
                        found: name.hasPrefix("read") ? parts.reduce(0) { $0 + $1.found } : nil,
                        perThread: parts.map { Double($0.ops) / $0.seconds }, latency: merged)
                }
            } catch {
                failure.withLock { $0 = error }
            }
            done.signal()
        }
        done.wait()
        if let e = failure.withLock({ $0 }) { throw e }
        return outcome.withLock { $0 }
    }
}
