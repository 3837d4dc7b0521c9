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
        let keySize = self.keySize
        let valueSize = self.valueSize
        let batchSize = name.hasPrefix("fill") ? self.batchSize : 1
        let pool = BenchWorkload.valuePool(compressionRatio: compressionRatio)
        let span = UInt64(BenchWorkload.poolSize - valueSize + 1)
        let order =
            name == "fillrandom" || name == "deleterandom" ? BenchWorkload.permutation(name, count: num) : nil
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
                            // The same sequences as the synchronous runs (`BenchWorkload`).
                            let seed = BenchWorkload.seed(name, thread: t)
                            var draws = Draws(keys: seed, values: seed ^ BenchWorkload.valueSalt)
                            var hist = Bench.histogram()
                            var bytes = 0
                            var found = 0
                            var k: [UInt8] = []
                            let mine = BenchWorkload.part(total, thread: t, of: tasks)
                            func value() -> ArraySlice<UInt8> {
                                let offset = Int(BenchWorkload.splitmix(&draws.values) % span)
                                return pool[offset..<(offset + valueSize)]
                            }
                            let t0 = DispatchTime.now().uptimeNanoseconds
                            var i = mine.lowerBound
                            while i < mine.upperBound {
                                let next = min(i + batchSize, mine.upperBound)
                                let s = DispatchTime.now().uptimeNanoseconds
                                if name.hasPrefix("fill") {
                                    if next - i == 1 {
                                        Bench.dbBenchKey(order?[i] ?? i, keySize: keySize, into: &k)
                                        try await tree.put(k, Array(value()))
                                    } else {
                                        var b = WriteBatch()
                                        for j in i..<next {
                                            Bench.dbBenchKey(order?[j] ?? j, keySize: keySize, into: &k)
                                            b.put(k, value())
                                        }
                                        try await tree.write(b)
                                    }
                                    bytes += (next - i) * (keySize + valueSize)
                                } else if name == "overwrite" {
                                    let index = Int(BenchWorkload.splitmix(&draws.keys) % UInt64(num))
                                    Bench.dbBenchKey(index, keySize: keySize, into: &k)
                                    try await tree.put(k, Array(value()))
                                    bytes += keySize + valueSize
                                } else if name.hasPrefix("delete") {
                                    Bench.dbBenchKey(order?[i] ?? i, keySize: keySize, into: &k)
                                    try await tree.delete(k)
                                    bytes += k.count
                                } else {
                                    let random = Int(BenchWorkload.splitmix(&draws.keys) % UInt64(num))
                                    Bench.dbBenchKey(
                                        name == "readhot" ? random % max(1, num / 100) : random, keySize: keySize,
                                        into: &k)
                                    if name == "readmissing" { k[k.count - 1] = UInt8(ascii: "x") }
                                    if let v = try await tree.get(k) {
                                        found += 1
                                        bytes += k.count + v.count
                                    }
                                }
                                _ = hist.record(DispatchTime.now().uptimeNanoseconds - s)
                                i = next
                            }
                            let secs = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                            return (mine.count, bytes, found, secs, hist)
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
