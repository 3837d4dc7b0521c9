import ArgumentParser
import Foundation
import Histogram
import SliceKV
import Synchronization

/// A db_bench-compatible benchmark driver (LevelDB's `db_bench` flags, workloads and output
/// lines), so results line up with the peers in `Benchmarks/peers`.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run db_bench-style benchmarks against a store.",
        discussion: """
            Benchmarks: fillseq, fillrandom, overwrite, fillsync, fillbatch, readrandom, readmissing, \
            readhot, readseq, readreverse, seekrandom, deleteseq, deleterandom, compact, stats, \
            overwritehot (--num puts over --hot_keys keys, reporting peak disk use and bytes written), \
            and the YCSB core workloads ycsba ... ycsbf (load phase of --num records before the \
            first, then --reads operations each; zipfian 0.99, latest or uniform requests as YCSB \
            defines them; per-operation latencies). \
            fill* benchmarks and overwritehot start from an empty store unless --use_existing_db is given.
            """)

    @Option(name: .customLong("benchmarks"), help: "Comma-separated list of benchmarks.")
    var benchmarks =
        "fillseq,fillrandom,overwrite,readrandom,readmissing,readhot,readseq,seekrandom,deleterandom,compact,stats"
    @Option(name: .customLong("num"), help: "Number of entries.") var num = 1_000_000
    @Option(name: .customLong("reads"), help: "Read operations (default: --num).") var reads: Int?
    @Option(name: .customLong("key_size")) var keySize = 16
    @Option(name: .customLong("value_size")) var valueSize = 100
    @Option(name: .customLong("threads"), help: "Client threads, each running the benchmark.") var threads = 1
    @Flag(name: .customLong("sync"), help: "Sync every write.") var sync = false
    @Option(name: .customLong("cache_size"), help: "Block cache bytes.") var cacheSize = 8 << 20
    @Option(name: .customLong("bloom_bits"), help: "Bloom bits per key (-1: none).") var bloomBits = 10
    @Option(name: .customLong("write_buffer_size"), help: "Memtable bytes.") var writeBufferSize = 64 << 20
    @Option(name: .customLong("blob_threshold"), help: "Values of at least this many bytes go to blob files.")
    var blobThreshold = Options().blobThreshold
    @Option(name: .customLong("blob_file_size"), help: "Bytes at which a blob file stops taking new values.")
    var blobFileSize = Options().blobFileSize
    @Option(
        name: .customLong("memtable_garbage_trigger"),
        help: "Blob bytes a memtable may hide (overwritten values) before it is flushed early.")
    var memtableGarbageTrigger = Options().memtableGarbageTrigger
    @Option(name: .customLong("hot_keys"), help: "Keys overwritehot spreads its puts over.") var hotKeys = 1
    @Option(name: .customLong("sample_every"), help: "Puts between overwritehot's disk-use samples.")
    var sampleEvery = 100
    @Option(
        name: .customLong("mmap_reads"),
        help: "Read table files through a memory mapping (true) or with pread (false).")
    var mmapReads = Options().mmapReads
    @Option(
        name: .customLong("mmap_writes"),
        help: "Append to the WAL through a memory mapping (true) or with write(2) (false).")
    var mmapWrites = Options().mmapWrites
    @Option(
        name: .customLong("subcompactions"),
        help: "Key ranges a large compaction is split into and merged in parallel (1: one thread).")
    var subcompactions = CompactionConfig().mergeParallelism
    @Flag(name: .customLong("use_existing_db")) var useExistingDB = false
    @Option(name: .customLong("db"), help: "Store directory.") var db = "/tmp/slicebench"
    @Flag(name: .customLong("histogram"), help: "Print latency percentiles.") var histogram = false
    @Flag(name: .customLong("json"), help: "Print results as JSON lines.") var json = false
    @Flag(
        name: .customLong("async"),
        help: "Run fill/overwrite/read/delete benchmarks through the async API with --threads tasks.")
    var useAsync = false

    func validate() throws {
        guard num > 0, keySize >= 8, keySize <= 1024, valueSize >= 0, threads >= 1 else {
            throw ValidationError("--num and --threads must be positive, --key_size 8...1024")
        }
    }

    func run() throws {
        try runReporting {
            var options = Options()
            options.blockCacheBytes = cacheSize
            options.bloomBitsPerKey = max(0, bloomBits)
            options.memtableSize = writeBufferSize
            options.blobThreshold = blobThreshold
            options.blobFileSize = blobFileSize
            options.memtableGarbageTrigger = memtableGarbageTrigger
            options.mmapReads = mmapReads
            options.mmapWrites = mmapWrites
            options.compaction.mergeParallelism = max(1, subcompactions)
            options.compaction.enableParallelMerge = subcompactions > 1
            var store: SliceDB?
            func open(fresh: Bool) throws -> SliceDB {
                if let s = store, !fresh { return s }
                if let s = store { try s.close() }
                store = nil
                if fresh { try? FileManager.default.removeItem(atPath: db) }
                let s = try SliceDB(path: db, options: options)
                store = s
                return s
            }
            if !json {
                print(
                    "Slice db_bench: keys \(keySize) bytes, values \(valueSize) bytes, entries \(num), threads \(threads), cache \(cacheSize) bytes, bloom \(bloomBits) bits, sync \(sync)"
                )
            }
            // YCSB records loaded so far (the load phase runs before the first YCSB workload).
            let ycsbRecords = YCSB.Records()
            var ycsbLoaded = useExistingDB
            if useExistingDB { ycsbRecords.count.store(UInt64(num), ordering: .relaxed) }
            for name in benchmarks.split(separator: ",").map({ String($0).trimmingCharacters(in: .whitespaces) }) {
                let fresh = (name.hasPrefix("fill") || name == "overwritehot") && !useExistingDB
                let store = try open(fresh: fresh || (YCSB.workload(name) != nil && !ycsbLoaded))
                if name == "stats" {
                    if !json { store.stats().print() }
                    continue
                }
                if let workload = YCSB.workload(name) {
                    if !ycsbLoaded {
                        let load = try ycsbLoad(store, records: ycsbRecords)
                        print(json ? load.json : load.line(histogram: histogram))
                        ycsbLoaded = true
                    }
                    let r = try ycsbRun(workload, store, records: ycsbRecords)
                    print(json ? r.json : r.line(histogram: histogram))
                    continue
                }
                if useAsync, let r = try runAsync(name, store) {
                    print(json ? r.json : r.line(histogram: histogram))
                    continue
                }
                guard let result = try runOne(name, store) else {
                    Terminal.error("unknown benchmark \(name)")
                    throw ExitCode(2)
                }
                print(json ? result.json : result.line(histogram: histogram))
            }
            try store?.close()
        }
    }

    struct Result {
        var name: String
        var ops: Int
        var seconds: Double
        var bytes: Int
        var found: Int?
        var perThread: [Double]
        var latency: Histogram<UInt64>
        /// Latency per operation type (YCSB workloads).
        var perOperation: [String: Histogram<UInt64>] = [:]

        var microsPerOp: Double { ops == 0 ? 0 : seconds * 1e6 / Double(ops) }
        var mbPerSecond: Double { seconds == 0 ? 0 : Double(bytes) / 1_048_576 / seconds }

        func line(histogram: Bool) -> String {
            var s = name.padding(toLength: 12, withPad: " ", startingAt: 0) + " : "
            s += String(format: "%11.3f micros/op;", microsPerOp)
            if bytes > 0 { s += String(format: " %6.1f MB/s", mbPerSecond) }
            if let found { s += " (\(found) of \(ops) found)" }
            if perThread.count > 1 {
                s += " [per thread ops/s: " + perThread.map { String(format: "%.0f", $0) }.joined(separator: ", ") + "]"
            }
            func percentiles(_ h: Histogram<UInt64>) -> String {
                func us(_ p: Double) -> String { String(format: "%.2f", Double(h.valueAtPercentile(p)) / 1000) }
                return
                    "p50 \(us(50)) p99 \(us(99)) p99.9 \(us(99.9)) max \(String(format: "%.2f", Double(h.max) / 1000))"
            }
            if histogram && latency.totalCount > 0 { s += "\n    latency us: " + percentiles(latency) }
            for (op, h) in perOperation.sorted(by: { $0.key < $1.key }) {
                let rate = seconds == 0 ? 0 : Double(h.totalCount) / seconds
                s += "\n    \(op.padding(toLength: 6, withPad: " ", startingAt: 0)) \(h.totalCount) ops, "
                s += String(format: "%.0f ops/s", rate) + ", latency us: " + percentiles(h)
            }
            return s
        }

        var json: String {
            func us(_ p: Double) -> Double { latency.totalCount == 0 ? 0 : Double(latency.valueAtPercentile(p)) / 1000 }
            var ops: [String: Any] = [:]
            for (op, h) in perOperation {
                func p(_ q: Double) -> Double { Double(h.valueAtPercentile(q)) / 1000 }
                ops[op] = [
                    "ops": h.totalCount, "p50_us": p(50), "p99_us": p(99), "p999_us": p(99.9),
                    "max_us": Double(h.max) / 1000,
                ]
            }
            let obj: [String: Any] = [
                "operations": ops,
                "benchmark": name, "ops": ops, "seconds": seconds, "micros_per_op": microsPerOp,
                "mb_per_s": mbPerSecond,
                "found": found ?? -1, "ops_per_s_per_thread": perThread,
                "p50_us": us(50), "p99_us": us(99), "p999_us": us(99.9),
                "max_us": Double(latency.max) / 1000,
            ]
            let data = try! JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
            return String(decoding: data, as: UTF8.self)
        }
    }

    /// Value bytes: a fixed, non-repeating-looking pattern (no compression anywhere anyway).
    func benchValue() -> [UInt8] {
        (0..<valueSize).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 13) }
    }

    /// db_bench's key: `i` in decimal, zero-padded (or cut to its last digits) to `keySize`
    /// bytes. Written digit by digit: formatting through `String` cost as much as a put's
    /// memtable insert, time db_bench's `snprintf` does not spend.
    static func dbBenchKey(_ i: Int, keySize: Int, into k: inout [UInt8]) {
        if k.count != keySize { k = [UInt8](repeating: 0, count: keySize) }
        var v = i
        k.withUnsafeMutableBufferPointer { b in
            for p in stride(from: keySize - 1, through: 0, by: -1) {
                b[p] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
            }
        }
    }

    func runOne(_ name: String, _ store: SliceDB) throws -> Result? {
        let reads = self.reads ?? num
        typealias Op =
            @Sendable (_ thread: Int, _ i: Int, _ rng: inout UInt64, _ k: inout [UInt8], _ value: [UInt8]) throws -> (
                Int, Bool
            )
        // Options are read once here: an `@Option` getter per operation measured as 5% of `readhot`.
        let num = self.num
        let keySize = self.keySize
        let sync = self.sync
        @Sendable func key(_ i: Int, into k: inout [UInt8]) { Bench.dbBenchKey(i, keySize: keySize, into: &k) }
        @Sendable func next(_ r: inout UInt64) -> Int {
            r ^= r << 13
            r ^= r >> 7
            r ^= r << 17
            return Int(r % UInt64(num))
        }
        var count = num
        var isRead = false
        let op: Op
        switch name {
        case "fillseq", "fillrandom", "overwrite", "fillsync":
            let random = name != "fillseq"
            let doSync = sync || name == "fillsync"
            if name == "fillsync" { count = max(1, num / 1000) }
            op = { _, i, r, k, v in
                key(random ? next(&r) : i, into: &k)
                var b = WriteBatch()
                b.put(k, v)
                try store.write(b, sync: doSync)
                return (k.count + v.count, true)
            }
        case "fillbatch":
            count = num / 1000
            op = { _, i, _, k, v in
                var b = WriteBatch()
                for j in 0..<1000 {
                    key(i * 1000 + j, into: &k)
                    b.put(k, v)
                }
                try store.write(b, sync: sync)
                return (1000 * (k.count + v.count), true)
            }
        case "readrandom", "readhot", "readmissing":
            count = reads
            isRead = true
            let range = name == "readhot" ? max(1, num / 100) : num
            let missing = name == "readmissing"
            op = { _, _, r, k, _ in
                key(next(&r) % range, into: &k)
                if missing { k.append(UInt8(ascii: ".")) }
                let v = try store.get(k)
                return ((v?.count ?? 0) + k.count, v != nil)
            }
        case "seekrandom":
            count = reads
            isRead = true
            op = { _, _, r, k, _ in
                key(next(&r), into: &k)
                // Views of the first entry, no copies: what db_bench (and peer_bench) reads.
                let c = try store.scan(KeyRange(start: k))
                var bytes = 0
                var found = false
                try c.forEach { key, value in
                    bytes = key.count + value.count
                    found = k.withUnsafeBytes { key.elementsEqual($0) }
                    return false
                }
                return (bytes, found)
            }
        case "deleteseq", "deleterandom":
            let random = name == "deleterandom"
            op = { _, i, r, k, _ in
                key(random ? next(&r) : i, into: &k)
                var b = WriteBatch()
                b.delete(k)
                try store.write(b, sync: sync)
                return (k.count, true)
            }
        case "readseq", "readreverse":
            let start = DispatchTime.now().uptimeNanoseconds
            let c = try store.scan(reverse: name == "readreverse")
            var n = 0
            var bytes = 0
            try c.forEach { k, v in
                n += 1
                bytes += k.count + v.count
                return true
            }
            let s = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            return Result(
                name: name, ops: n, seconds: s, bytes: bytes, found: nil, perThread: [Double(n) / s],
                latency: .init(numberOfSignificantValueDigits: .two))
        case "overwritehot":
            return try runOverwriteHot(store)
        case "compact":
            let start = DispatchTime.now().uptimeNanoseconds
            try store.compact()
            let s = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            return Result(
                name: name, ops: 1, seconds: s, bytes: 0, found: nil, perThread: [],
                latency: .init(numberOfSignificantValueDigits: .two))
        default:
            return nil
        }
        let value = benchValue()
        let results = Locked<[(ops: Int, bytes: Int, found: Int, seconds: Double, hist: Histogram<UInt64>)]>([])
        let failure = Locked<Error?>(nil)
        let total = count
        let progressEvery = max(1, total / 100)
        let start = DispatchTime.now().uptimeNanoseconds
        let threads = self.threads
        let wantHistogram = histogram || json
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            var rng = UInt64(0x2545_F491_4F6C_DD1D) &+ UInt64(t) &* 0x9E37_79B9
            var k: [UInt8] = []
            var hist = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .two)
            var bytes = 0
            var found = 0
            let t0 = DispatchTime.now().uptimeNanoseconds
            do {
                for i in 0..<total {
                    let s = wantHistogram ? DispatchTime.now().uptimeNanoseconds : 0
                    let (b, f) = try op(t, i, &rng, &k, value)
                    if wantHistogram { _ = hist.record(DispatchTime.now().uptimeNanoseconds - s) }
                    bytes += b
                    if f { found += 1 }
                    if t == 0 && i % progressEvery == 0 && total >= 200_000 { Terminal.progress(name, i, total) }
                }
            } catch {
                failure.withLock { $0 = error }
            }
            if t == 0 && total >= 200_000 { Terminal.progress(name, total, total) }
            let secs = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            results.withLock { $0.append((total, bytes, found, secs, hist)) }
        }
        if let e = failure.withLock({ $0 }) { throw e }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let all = results.withLock { $0 }
        var merged = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .two)
        for r in all { merged.add(r.hist) }
        return Result(
            name: name, ops: all.reduce(0) { $0 + $1.ops }, seconds: elapsed, bytes: all.reduce(0) { $0 + $1.bytes },
            found: isRead ? all.reduce(0) { $0 + $1.found } : nil, perThread: all.map { Double($0.ops) / $0.seconds },
            latency: merged)
    }
}
