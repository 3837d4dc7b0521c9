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
    @Option(
        name: .customLong("threads"),
        help: "Client threads: fills and deletes split the key sequence, the others the operation count.")
    var threads = 1
    @Option(name: .customLong("batch_size"), help: "Puts per write batch in fillseq and fillrandom.")
    var batchSize = 1
    @Flag(
        inversion: .prefixedNo,
        help: "After each writing benchmark, wait (untimed) until the store directory is unchanged for a second.")
    var settle = true
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
    @Option(
        name: .customLong("max_background_compactions"),
        help: "Compaction jobs that may run at once (background threads, and a manual compaction's).")
    var maxBackgroundCompactions = CompactionConfig().maxConcurrentCompactions
    @Option(name: .customLong("compaction_style"), help: "leveled or universal.")
    var compactionStyle: CompactionStyle = .leveled
    @Option(
        name: .customLong("compression_type"),
        help: """
            Table block compression on every level: none, lz4 or zstd; default: the store's \
            defaults (none on L0-L1, LZ4 below, zstd at the deepest level). none by default here, \
            as the peers in Benchmarks/compare.sh run.
            """)
    var compressionType: String = "none"
    @Option(
        name: .customLong("compression_ratio"),
        help: "Values compress to about this fraction of their size (db_bench's; 1: random bytes).")
    var compressionRatio = 1.0
    @Flag(name: .customLong("use_existing_db")) var useExistingDB = false
    @Option(name: .customLong("db"), help: "Store directory.") var db = "/tmp/slicebench"
    @Flag(name: .customLong("histogram"), help: "Print latency percentiles.") var histogram = false
    @Flag(name: .customLong("json"), help: "Print results as JSON lines.") var json = false
    @Flag(
        name: .customLong("async"),
        help: "Run fill/overwrite/read/delete benchmarks through the async API with --threads tasks.")
    var useAsync = false

    func validate() throws {
        guard num > 0, keySize >= 8, keySize <= 1024, valueSize >= 0, valueSize <= BenchWorkload.poolSize, threads >= 1,
            batchSize >= 1, (1...64).contains(maxBackgroundCompactions), compressionRatio > 0, compressionRatio <= 1,
            compressionType == "default" || Compression(rawValue: compressionType) != nil
        else {
            throw ValidationError(
                "--num, --threads and --batch_size must be positive, --key_size 8...1024, --value_size at most 1 MiB, --compression_ratio in (0, 1], --compression_type none, lz4, zstd or default, --max_background_compactions 1...64"
            )
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
            if let c = Compression(rawValue: compressionType) { options.setCompression(c) }
            options.compaction.maxConcurrentCompactions = maxBackgroundCompactions
            options.compaction.style = compactionStyle
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
                    "Slice db_bench: keys \(keySize) bytes, values \(valueSize) bytes, entries \(num), threads \(threads), cache \(cacheSize) bytes, bloom \(bloomBits) bits, sync \(sync), compression \(compressionType) (values compress to \(compressionRatio)), compaction \(compactionStyle.rawValue) (\(maxBackgroundCompactions) jobs at once)"
                )
            }
            // YCSB records loaded so far (the load phase runs before the first YCSB workload).
            let ycsbRecords = YCSB.Records()
            var ycsbLoaded = useExistingDB
            if useExistingDB { ycsbRecords.count.store(UInt64(num), ordering: .relaxed) }
            for token in benchmarks.split(separator: ",").map({ String($0).trimmingCharacters(in: .whitespaces) }) {
                // `name@T` runs that benchmark with T threads (`fillrandom@2,readrandom@4`).
                var bench = self
                let name = String(token.split(separator: "@").first ?? "")
                if let at = token.firstIndex(of: "@") {
                    guard let t = Int(token[token.index(after: at)...]), t >= 1 else {
                        Terminal.error("bad thread count in \(token)")
                        throw ExitCode(2)
                    }
                    bench.threads = t
                }
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
                if useAsync, var r = try bench.runAsync(name, store) {
                    r.name = token
                    print(json ? r.json : r.line(histogram: histogram))
                    if settle && Bench.writes(name) { Bench.settle(db) }
                    continue
                }
                guard var result = try bench.runOne(name, store) else {
                    Terminal.error("unknown benchmark \(name)")
                    throw ExitCode(2)
                }
                result.name = token
                print(json ? result.json : result.line(histogram: histogram))
                if settle && Bench.writes(name) { Bench.settle(db) }
            }
            if !json, store != nil {
                // Space on disk as `du` counts it (the compression comparison reads this line).
                print("disk: \(DiskUse.allocatedBytes(db)) bytes allocated in \(db) (RESERVE and WAL included)")
            }
            try store?.close()
            if !json, let peak = Bench.peakResidentKiB() { print("peak RSS: \(peak) KiB") }
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

    /// Runs `body(t)` for t in 0..<count, each on its own thread, and waits for all of them.
    /// (`DispatchQueue.concurrentPerform` runs at most as many at once as there are cores:
    /// 4 "threads" on 2 cores would be two rounds of two.)
    static func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
        let done = DispatchGroup()
        for t in 0..<count {
            done.enter()
            let thread = Thread {
                body(t)
                done.leave()
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        done.wait()
    }

    /// Whether a benchmark writes (the harness then lets background work finish before the next).
    static func writes(_ name: String) -> Bool {
        name.hasPrefix("fill") || name.hasPrefix("delete") || name == "overwrite" || name == "ycsb_a"
            || name == "ycsb_b"
    }

    /// Waits until the files of `directory` (count, sizes, mtimes) have not changed for a
    /// second: flushes and compactions the last workload started are over.
    static func settle(_ directory: String) {
        func fingerprint() -> [String: [Int]] {
            var seen: [String: [Int]] = [:]
            for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
                var st = stat()
                guard stat(directory + "/" + name, &st) == 0 else { continue }
                seen[name] = [Int(st.st_size), st.st_mtim.tv_sec, st.st_mtim.tv_nsec]
            }
            return seen
        }
        var last = fingerprint()
        var stableSince = DispatchTime.now().uptimeNanoseconds
        while DispatchTime.now().uptimeNanoseconds - stableSince < 1_000_000_000 {
            usleep(100_000)
            let now = fingerprint()
            if now != last {
                last = now
                stableSince = DispatchTime.now().uptimeNanoseconds
            }
        }
    }

    /// Peak resident memory of this process (`VmHWM`), in KiB.
    static func peakResidentKiB() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return Int(line.dropFirst(6).split(whereSeparator: \.isWhitespace).first ?? "")
        }
        return nil
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

    /// The generators one thread draws from (see `BenchWorkload`).
    struct Draws {
        var keys: UInt64
        var values: UInt64
    }

    func runOne(_ name: String, _ store: SliceDB) throws -> Result? {
        let reads = self.reads ?? num
        /// One step of a thread: the positions `range` of its sequence (one, or a batch).
        typealias Op =
            @Sendable (_ range: Range<Int>, _ draws: inout Draws, _ k: inout [UInt8]) throws -> (bytes: Int, found: Int)
        // Options are read once here: an `@Option` getter per operation measured as 5% of `readhot`.
        let num = self.num
        let keySize = self.keySize
        let valueSize = self.valueSize
        let sync = self.sync
        let pool = BenchWorkload.valuePool(compressionRatio: compressionRatio)
        let span = UInt64(BenchWorkload.poolSize - valueSize + 1)
        @Sendable func key(_ i: Int, into k: inout [UInt8]) { Bench.dbBenchKey(i, keySize: keySize, into: &k) }
        @Sendable func uniform(_ d: inout Draws) -> Int { Int(BenchWorkload.splitmix(&d.keys) % UInt64(num)) }
        @Sendable func value(_ d: inout Draws) -> ArraySlice<UInt8> {
            let offset = Int(BenchWorkload.splitmix(&d.values) % span)
            return pool[offset..<(offset + valueSize)]
        }
        var count = num
        var step = 1
        var isRead = false
        let op: Op
        switch name {
        case "fillseq", "fillrandom", "fillbatch", "fillsync":
            // Every key once, in order or in the name's permutation; `--batch_size` per batch.
            let order = name == "fillrandom" ? BenchWorkload.permutation(name, count: num) : nil
            let doSync = sync || name == "fillsync"
            if name == "fillsync" { count = max(1, num / 1000) }
            step = name == "fillbatch" ? 1000 : batchSize
            op = { range, d, k in
                var b = WriteBatch()
                for i in range {
                    key(order?[i] ?? i, into: &k)
                    b.put(k, value(&d))
                }
                try store.write(b, sync: doSync)
                return (range.count * (keySize + valueSize), 0)
            }
        case "overwrite":
            op = { _, d, k in
                key(uniform(&d), into: &k)
                var b = WriteBatch()
                b.put(k, value(&d))
                try store.write(b, sync: sync)
                return (keySize + valueSize, 0)
            }
        case "readrandom", "readhot", "readmissing":
            count = reads
            isRead = true
            let range = name == "readhot" ? max(1, num / 100) : num
            let missing = name == "readmissing"
            op = { _, d, k in
                key(uniform(&d) % range, into: &k)
                if missing { k[k.count - 1] = UInt8(ascii: "x") }
                guard let v = try store.get(k) else { return (0, 0) }
                return (v.count + k.count, 1)
            }
        case "seekrandom":
            count = reads
            isRead = true
            op = { _, d, k in
                key(uniform(&d), into: &k)
                // A fresh iterator; views of each entry, no copies (what peer_bench reads).
                let c = try store.scan(KeyRange(start: k))
                var bytes = 0
                var n = 0
                try c.forEach { key, value in
                    bytes += key.count + value.count
                    n += 1
                    return n < BenchWorkload.seekEntries
                }
                return (bytes, n > 0 ? 1 : 0)
            }
        case "ycsb_a", "ycsb_b", "ycsb_c":
            count = reads
            isRead = true
            let percent = BenchWorkload.readPercent(name)!
            let zipf = ZipfianGenerator(items: UInt64(num))
            op = { _, d, k in
                let read = Int(BenchWorkload.splitmix(&d.keys) % 100) < percent
                var z = zipf
                let rank = z.next(UInt64(num), BenchWorkload.unit(&d.keys))
                key(BenchWorkload.scrambled(rank, num: num), into: &k)
                if read {
                    guard let v = try store.get(k) else { return (0, 0) }
                    return (v.count + k.count, 1)
                }
                var b = WriteBatch()
                b.put(k, value(&d))
                try store.write(b, sync: sync)
                return (keySize + valueSize, 0)
            }
        case "deleteseq", "deleterandom":
            let order = name == "deleterandom" ? BenchWorkload.permutation(name, count: num) : nil
            op = { range, _, k in
                key(order?[range.lowerBound] ?? range.lowerBound, into: &k)
                var b = WriteBatch()
                b.delete(k)
                try store.write(b, sync: sync)
                return (k.count, 0)
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
        let results = Locked<[(ops: Int, bytes: Int, found: Int, seconds: Double, hist: Histogram<UInt64>)]>([])
        let failure = Locked<Error?>(nil)
        let total = count
        let batch = step
        let progressEvery = max(1, total / 100)
        let start = DispatchTime.now().uptimeNanoseconds
        let threads = self.threads
        let wantHistogram = histogram || json
        Bench.onThreads(threads) { t in
            let seed = BenchWorkload.seed(name, thread: t)
            var draws = Draws(keys: seed, values: seed ^ BenchWorkload.valueSalt)
            var k: [UInt8] = []
            var hist = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .two)
            var bytes = 0
            var found = 0
            let mine = BenchWorkload.part(total, thread: t, of: threads)
            let t0 = DispatchTime.now().uptimeNanoseconds
            do {
                var i = mine.lowerBound
                while i < mine.upperBound {
                    let next = min(i + batch, mine.upperBound)
                    let s = wantHistogram ? DispatchTime.now().uptimeNanoseconds : 0
                    let (b, f) = try op(i..<next, &draws, &k)
                    if wantHistogram { _ = hist.record(DispatchTime.now().uptimeNanoseconds - s) }
                    bytes += b
                    found += f
                    if t == 0 && (i - mine.lowerBound) % progressEvery < batch && total >= 200_000 {
                        Terminal.progress(name, (i - mine.lowerBound) * threads, total)
                    }
                    i = next
                }
            } catch {
                failure.withLock { $0 = error }
            }
            if t == 0 && total >= 200_000 { Terminal.progress(name, total, total) }
            let secs = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            results.withLock { $0.append((mine.count, bytes, found, secs, hist)) }
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
