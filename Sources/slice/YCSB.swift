import Foundation
import Histogram
import SliceKV
import Synchronization

/// YCSB core workloads A-F (Cooper et al., "Benchmarking Cloud Serving Systems with YCSB"),
/// with the generators of the reference implementation (`site.ycsb.generator`):
///
/// | workload | mix | request distribution |
/// |---|---|---|
/// | A | 50% read, 50% update | zipfian |
/// | B | 95% read, 5% update | zipfian |
/// | C | 100% read | zipfian |
/// | D | 95% read, 5% insert | latest |
/// | E | 95% scan (1-100 records, uniform), 5% insert | zipfian |
/// | F | 50% read, 50% read-modify-write | zipfian |
///
/// Keys are "user" followed by the FNV-1a 64-bit hash of the record number (YCSB's hashed
/// insert order), so records are spread over the key space; zipfian requests are scrambled
/// (YCSB's `ScrambledZipfianGenerator`, constant 0.99). Values are `--value_size` bytes.
struct YCSB {
    enum Operation: String, CaseIterable {
        case read, update, insert, scan
        case readModifyWrite = "rmw"
    }

    enum Distribution { case zipfian, latest, uniform }

    /// Records inserted so far (load phase plus inserts), shared by the client threads.
    final class Records: Sendable {
        let count = Atomic<UInt64>(0)
    }

    struct Workload {
        let name: String
        let mix: [(Operation, Double)]
        let distribution: Distribution
    }

    static func workload(_ name: String) -> Workload? {
        switch name {
        case "ycsba": return Workload(name: name, mix: [(.read, 0.5), (.update, 0.5)], distribution: .zipfian)
        case "ycsbb": return Workload(name: name, mix: [(.read, 0.95), (.update, 0.05)], distribution: .zipfian)
        case "ycsbc": return Workload(name: name, mix: [(.read, 1.0)], distribution: .zipfian)
        case "ycsbd": return Workload(name: name, mix: [(.read, 0.95), (.insert, 0.05)], distribution: .latest)
        case "ycsbe": return Workload(name: name, mix: [(.scan, 0.95), (.insert, 0.05)], distribution: .zipfian)
        case "ycsbf":
            return Workload(name: name, mix: [(.read, 0.5), (.readModifyWrite, 0.5)], distribution: .zipfian)
        default: return nil
        }
    }

    static func fnv64(_ v: UInt64) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        var x = v
        for _ in 0..<8 {
            h ^= x & 0xff
            h = h &* 0x100_0000_01B3
            x >>= 8
        }
        return h
    }

    /// "user" + 19-digit hash: YCSB's key for record `i`.
    static func key(_ i: UInt64, into k: inout [UInt8]) {
        k.removeAll(keepingCapacity: true)
        k.append(contentsOf: [0x75, 0x73, 0x65, 0x72])  // "user"
        var h = fnv64(i)
        var digits = [UInt8](repeating: 0x30, count: 19)
        var p = 18
        while h > 0 && p >= 0 {
            digits[p] = 0x30 + UInt8(h % 10)
            h /= 10
            p -= 1
        }
        k.append(contentsOf: digits)
    }
}

/// YCSB's `ZipfianGenerator` (Gray et al., "Quickly Generating Billion-Record Synthetic
/// Databases"), including its incremental zeta update when the item count grows.
struct ZipfianGenerator {
    let theta: Double
    let alpha: Double
    let zeta2: Double
    private(set) var items: UInt64
    private var zetan: Double
    private var eta: Double

    static func zeta(from: UInt64, to: UInt64, theta: Double, initial: Double) -> Double {
        var sum = initial
        var i = from
        while i < to {
            sum += 1 / pow(Double(i + 1), theta)
            i += 1
        }
        return sum
    }

    init(items: UInt64, theta: Double = 0.99, zetan: Double? = nil) {
        self.theta = theta
        self.items = items
        alpha = 1 / (1 - theta)
        zeta2 = ZipfianGenerator.zeta(from: 0, to: 2, theta: theta, initial: 0)
        self.zetan = zetan ?? ZipfianGenerator.zeta(from: 0, to: items, theta: theta, initial: 0)
        eta = 0
        eta = (1 - pow(2 / Double(items), 1 - theta)) / (1 - zeta2 / self.zetan)
    }

    /// A value in 0..<itemCount; grows the distribution when itemCount increased.
    mutating func next(_ itemCount: UInt64, _ u: Double) -> UInt64 {
        if itemCount > items {
            zetan = ZipfianGenerator.zeta(from: items, to: itemCount, theta: theta, initial: zetan)
            items = itemCount
            eta = (1 - pow(2 / Double(items), 1 - theta)) / (1 - zeta2 / zetan)
        }
        let uz = u * zetan
        if uz < 1 { return 0 }
        if uz < 1 + pow(0.5, theta) { return 1 }
        return min(items - 1, UInt64(Double(items) * pow(eta * u - eta + 1, alpha)))
    }
}

extension Bench {
    /// Loads `num` YCSB records (the load phase); returns its result line.
    func ycsbLoad(_ store: SliceDB, records: YCSB.Records) throws -> Result {
        let value = benchValue()
        let start = DispatchTime.now().uptimeNanoseconds
        var k: [UInt8] = []
        var hist = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .two)
        for i in 0..<UInt64(num) {
            YCSB.key(i, into: &k)
            let t = DispatchTime.now().uptimeNanoseconds
            try store.put(k, value)
            _ = hist.record(DispatchTime.now().uptimeNanoseconds - t)
            if i % UInt64(max(1, num / 100)) == 0 && num >= 200_000 { Terminal.progress("ycsb load", Int(i), num) }
        }
        records.count.store(UInt64(num), ordering: .relaxed)
        let s = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return Result(
            name: "ycsbload", ops: num, seconds: s, bytes: num * (23 + valueSize), found: nil,
            perThread: [Double(num) / s], latency: hist)
    }

    /// The run phase of one workload: `reads` operations (default `num`) over `threads`
    /// client threads; latency per operation type.
    func ycsbRun(_ workload: YCSB.Workload, _ store: SliceDB, records: YCSB.Records) throws -> Result {
        let total = reads ?? num
        let value = benchValue()
        let perThread = max(1, total / threads)
        let failure = Locked<Error?>(nil)
        typealias Stats = (ops: Int, bytes: Int, found: Int, seconds: Double, hists: [String: Histogram<UInt64>])
        let results = Locked<[Stats]>([])
        let initialItems = records.count.load(ordering: .relaxed)
        // One zeta computation, shared by the threads (YCSB's constant for its 10^10-item scrambler).
        let scrambler = ZipfianGenerator(items: 10_000_000_000, zetan: 26.46902820178302)
        let latestBase = ZipfianGenerator(items: max(1, initialItems))
        let start = DispatchTime.now().uptimeNanoseconds
        Bench.onThreads(threads) { t in
            var rng = SystemRandomNumberGenerator()
            var scrambled = scrambler
            var latest = latestBase
            var k: [UInt8] = []
            var hists: [String: Histogram<UInt64>] = [:]
            var bytes = 0
            var found = 0
            let t0 = DispatchTime.now().uptimeNanoseconds
            func chooseRecord() -> UInt64 {
                let n = max(1, records.count.load(ordering: .relaxed))
                let u = Double.random(in: 0..<1, using: &rng)
                switch workload.distribution {
                case .zipfian: return YCSB.fnv64(scrambled.next(10_000_000_000, u)) % n
                case .latest: return (n - 1) - min(n - 1, latest.next(n, u))
                case .uniform: return UInt64.random(in: 0..<n, using: &rng)
                }
            }
            do {
                for i in 0..<perThread {
                    var p = Double.random(in: 0..<1, using: &rng)
                    var op = workload.mix.last!.0
                    for (o, share) in workload.mix {
                        if p < share {
                            op = o
                            break
                        }
                        p -= share
                    }
                    let s = DispatchTime.now().uptimeNanoseconds
                    switch op {
                    case .read:
                        YCSB.key(chooseRecord(), into: &k)
                        if let v = try store.get(k) {
                            found += 1
                            bytes += k.count + v.count
                        }
                    case .update:
                        YCSB.key(chooseRecord(), into: &k)
                        try store.put(k, value)
                        bytes += k.count + value.count
                    case .insert:
                        let n = records.count.wrappingAdd(1, ordering: .relaxed).oldValue
                        YCSB.key(n, into: &k)
                        try store.put(k, value)
                        bytes += k.count + value.count
                    case .scan:
                        YCSB.key(chooseRecord(), into: &k)
                        let length = Int.random(in: 1...100, using: &rng)
                        var n = 0
                        try store.scan(KeyRange(start: k)).forEach { key, v in
                            bytes += key.count + v.count
                            n += 1
                            return n < length
                        }
                        if n > 0 { found += 1 }
                    case .readModifyWrite:
                        YCSB.key(chooseRecord(), into: &k)
                        var v = try store.get(k) ?? value
                        if !v.isEmpty { v[0] &+= 1 }
                        try store.put(k, v)
                        found += 1
                        bytes += 2 * (k.count + v.count)
                    }
                    let elapsed = DispatchTime.now().uptimeNanoseconds - s
                    _ = hists[op.rawValue, default: Bench.histogram()].record(elapsed)
                    if t == 0 && i % max(1, perThread / 100) == 0 && total >= 200_000 {
                        Terminal.progress(workload.name, i, perThread)
                    }
                }
            } catch {
                failure.withLock { $0 = error }
            }
            let secs = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            results.withLock { $0.append((perThread, bytes, found, secs, hists)) }
        }
        if let e = failure.withLock({ $0 }) { throw e }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let all = results.withLock { $0 }
        var perOp: [String: Histogram<UInt64>] = [:]
        var merged = Bench.histogram()
        for r in all {
            for (name, h) in r.hists {
                perOp[name, default: Bench.histogram()].add(h)
                merged.add(h)
            }
        }
        var result = Result(
            name: workload.name, ops: all.reduce(0) { $0 + $1.ops }, seconds: elapsed,
            bytes: all.reduce(0) { $0 + $1.bytes }, found: nil, perThread: all.map { Double($0.ops) / $0.seconds },
            latency: merged)
        result.perOperation = perOp
        return result
    }

    static func histogram() -> Histogram<UInt64> {
        Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .two)
    }
}
