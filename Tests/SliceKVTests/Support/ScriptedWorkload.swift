import Foundation
import Testing

@testable import SliceKV

/// The scripted workload the fault tests run again and again: puts, overwrites, deletes, a
/// batch, large values (blob files), flushes, a manual compaction (which also collects blob
/// garbage) and MANIFEST rolls. It stops at the first failure and remembers what was
/// attempted and what was acknowledged, so a test can check the store afterwards.
final class ScriptedWorkload {
    /// Per key, the values written in order (nil = delete).
    private(set) var writes: [String: [[UInt8]?]] = [:]
    /// Per key, how many of `writes` were acknowledged, and how many of those were durable
    /// (acknowledged under `sync: always`, or followed by a successful `sync()`).
    private(set) var acknowledged: [String: Int] = [:]
    private(set) var durable: [String: Int] = [:]
    /// The error that stopped the workload, if one did.
    private(set) var failure: Error?

    /// Options under which flushes, compactions, blob files and MANIFEST rolls all happen.
    static func options(policy: Options.SyncPolicy, mmapWrites: Bool, layer: any FileLayer) -> Options {
        var o = tinyOptions()
        o.syncPolicy = policy
        o.mmapWrites = mmapWrites
        o.fileLayer = layer
        o.blobThreshold = 300  // the "large" values below go to blob files
        o.blobFileSize = 1 << 16
        o.manifestRollBytes = 2048  // a few edits roll the MANIFEST
        o.compaction.maxConcurrentCompactions = 1
        return o
    }

    static func value(_ key: String, _ n: Int, large: Bool = false) -> [UInt8] {
        let base = Array("\(key)#\(n)|".utf8)
        return large ? Array(repeatElement(base, count: 400 / base.count + 1).joined()) : base
    }

    /// Runs the script; `scale` multiplies the number of puts in each phase.
    func run(_ db: SliceDB, policy: Options.SyncPolicy, scale: Int = 1) {
        do { try script(db, policy: policy, scale: scale) } catch { failure = error }
    }

    private func script(_ db: SliceDB, policy: Options.SyncPolicy, scale: Int) throws {
        let isDurable = policy == .always
        func attempt(_ key: String, _ value: [UInt8]?) { writes[key, default: []].append(value) }
        func acknowledge(_ key: String) {
            acknowledged[key] = writes[key]!.count
            if isDurable { durable[key] = writes[key]!.count }
        }
        func put(_ key: String, _ v: [UInt8]) throws {
            attempt(key, v)
            try db.put(Array(key.utf8), v)
            acknowledge(key)
        }
        func delete(_ key: String) throws {
            attempt(key, nil)
            try db.delete(key)
            acknowledge(key)
        }
        func sync() throws {
            guard !isDurable else { return }
            try db.sync()
            durable = acknowledged
        }
        let keys = 12
        for i in 0..<(24 * scale) { try put("k\(i % keys)", Self.value("k\(i % keys)", i, large: i % 5 == 0)) }
        var batch = WriteBatch()
        var batchKeys: [(String, [UInt8]?)] = []
        for i in 0..<6 {
            let k = "b\(i)"
            let v = i == 3 ? nil : Self.value(k, 100, large: i == 1)
            if let v { batch.put(Array(k.utf8), v) } else { batch.delete(Array(k.utf8)) }
            batchKeys.append((k, v))
        }
        for (k, v) in batchKeys { attempt(k, v) }
        try db.write(batch)
        for (k, _) in batchKeys { acknowledge(k) }
        try sync()
        try db.flush()
        for i in (24 * scale)..<(44 * scale) {
            let k = "k\(i % keys)"
            if i % 7 == 0 { try delete(k) } else { try put(k, Self.value(k, i, large: i % 4 == 0)) }
        }
        try db.flush()
        try db.compact()
        for i in (44 * scale)..<(56 * scale) {
            try put("k\(i % keys)", Self.value("k\(i % keys)", i, large: i % 3 == 0))
        }
        try sync()
        try db.flush()
        for i in 56..<60 { try put("c\(i)", Self.value("c", i)) }
        try sync()
    }

    enum Guarantee {
        /// Every acknowledged write is there (the process lived, or died without a power cut).
        case acknowledged
        /// Every durable write is there (after a power cut).
        case durable
    }

    /// Opens the store at `dir` with the real file layer and checks it: it opens, `check`
    /// passes, every write the guarantee covers is there (or a later attempted one), and no
    /// key holds a value that was never written. Records issues labelled `what`.
    func verify(_ dir: String, _ guarantee: Guarantee, _ what: String, otherKeys: Set<String> = []) {
        let db: SliceDB
        do {
            db = try SliceDB(path: dir, options: tinyOptions())
        } catch {
            Issue.record("\(what): the store does not open: \(error)")
            return
        }
        defer { try? db.close() }
        do { _ = try db.check() } catch { Issue.record("\(what): check fails: \(error)") }
        do {
            for entry in try allEntries(db) {
                let key = String(decoding: entry.key, as: UTF8.self)
                if writes[key] == nil && !otherKeys.contains(key) {
                    Issue.record("\(what): key \(key) was never written")
                }
            }
            let floor = guarantee == .durable ? durable : acknowledged
            for (key, values) in writes {
                let got = try db.get(Array(key.utf8))
                // The last guaranteed write or any write attempted after it; with none, also absent.
                let from = floor[key] ?? 0
                let allowed: [[UInt8]?] = (from == 0 ? [nil] : []) + values[max(0, from - 1)...]
                if !allowed.contains(where: { $0 == got }) {
                    let shown = got.map { String(decoding: $0.prefix(24), as: UTF8.self) } ?? "absent"
                    Issue.record("\(what): key \(key) reads \(shown); guaranteed writes \(from) of \(values.count)")
                }
            }
        } catch {
            Issue.record("\(what): reading the store fails: \(error)")
        }
    }
}
