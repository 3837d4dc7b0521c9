import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SliceKV
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A blocking client of an etcd v3 cluster through its JSON gateway (`POST /v3/kv/range`,
/// `/v3/kv/txn`, …, served on every member's client port), over AsyncHTTPClient.
///
/// Why the JSON gateway and not gRPC: the gateway is part of etcd's stable v3 API, takes the
/// same messages as the gRPC service (`EtcdMessages.swift`), needs no generated code, and
/// AsyncHTTPClient is the well-kept HTTP client of the Swift server ecosystem; a request
/// costs about 0.2-0.3 ms on loopback against a Raft commit of 1-3 ms (BENCHMARKS.md). The
/// price is JSON and base64 (a third more bytes per value).
///
/// Calls block the calling thread (FUSE worker threads, which must answer before they
/// return; never a Swift concurrency thread) on a future of AsyncHTTPClient's event loop.
///
/// Failures: a member that cannot be reached, has no leader or times out makes the call try
/// the next member, round after round, until `deadline` seconds have passed; then it throws
/// `SliceError(.ioError)` (EIO through the mount), so a cluster without quorum answers with a
/// clear error, never a hang. etcd's own refusals map to errnos: database quota exceeded →
/// `.noSpace` (ENOSPC), a request or transaction over the cluster's limits → EFBIG.
final class EtcdClient: Sendable {
    let endpoints: [String]
    let http: HTTPClient
    /// Seconds one call may take over all its attempts.
    let deadline: Double
    /// The member the last call succeeded on (calls start there).
    private let preferred = Atomic<Int>(0)
    let counters = EtcdCounters()

    init(endpoints: [String], deadline: Double = 8) {
        self.endpoints = endpoints
        self.deadline = deadline
        var config = HTTPClient.Configuration()
        config.timeout = .init(connect: .seconds(1), read: .seconds(3))
        // FUSE runs several worker threads, each blocked on its own call: one connection each.
        config.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 16)
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
        // The watch stream is quiet while nothing changes: no read timeout there.
        var watchConfig = HTTPClient.Configuration()
        watchConfig.timeout = .init(connect: .seconds(1))
        watchHTTP = HTTPClient(eventLoopGroupProvider: .singleton, configuration: watchConfig)
    }

    /// The client of `EtcdWatcher`'s long-lived stream.
    let watchHTTP: HTTPClient

    func shutdown() {
        try? http.syncShutdown()
        try? watchHTTP.syncShutdown()
    }

    /// Calls `path` (such as `/v3/kv/range`) with `body` and decodes the reply. `member`: ask
    /// that member only, once (for its own status).
    func call<Request: Encodable, Response: Decodable>(
        _ path: String, _ body: Request, as: Response.Type, kind: EtcdCounters.Kind, member: Int? = nil
    ) throws -> Response {
        let payload = try Etcd.encoder().encode(body)
        let start = DispatchTime.now().uptimeNanoseconds
        defer { counters.record(kind, nanoseconds: DispatchTime.now().uptimeNanoseconds - start) }
        let end = Double(start) / 1e9 + deadline
        var lastProblem = "no member answered"
        var round = 0
        while true {
            let first = member ?? preferred.load(ordering: .relaxed)
            for step in 0..<(member == nil ? endpoints.count : 1) {
                // Each attempt gets at most the time left (and 3 s): the deadline holds however
                // many members there are.
                let left = end - Double(DispatchTime.now().uptimeNanoseconds) / 1e9
                if step > 0 && left <= 0 { break }
                let attempt = max(0.2, min(3, left))
                let index = (first + step) % endpoints.count
                var request = try HTTPClient.Request(url: "http://\(endpoints[index])\(path)", method: .POST)
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(payload)
                let response: HTTPClient.Response
                do {
                    response = try http.execute(
                        request: request, deadline: .now() + .milliseconds(Int64(attempt * 1000))
                    )
                    .wait()
                } catch {
                    lastProblem = "\(endpoints[index]): \(error)"
                    continue
                }
                let bytes = response.body.map { Data($0.readableBytesView) } ?? Data()
                if response.status == .ok {
                    if member == nil { preferred.store(index, ordering: .relaxed) }
                    return try Etcd.decoder().decode(Response.self, from: bytes)
                }
                let e = try? Etcd.decoder().decode(Etcd.GatewayError.self, from: bytes)
                let message = e?.message ?? e?.error ?? "HTTP \(response.status.code)"
                if let refusal = EtcdClient.refusal(message) { throw refusal }
                // No leader, leader changed, timed out, not yet started: another member may answer.
                lastProblem = "\(endpoints[index]): \(message)"
            }
            round += 1
            counters.retries.add(1, ordering: .relaxed)
            if member != nil || Double(DispatchTime.now().uptimeNanoseconds) / 1e9 >= end {
                counters.failures.add(1, ordering: .relaxed)
                throw SliceError(.ioError, "etcd cluster unavailable after \(round) rounds: \(lastProblem)", errno: EIO)
            }
            usleep(useconds_t(min(200_000, 20_000 * round)))
        }
    }

    /// What etcd answers that no retry changes, as the error the caller gets.
    static func refusal(_ message: String) -> SliceError? {
        if message.contains("database space exceeded") {
            return SliceError(.noSpace, "etcd: \(message) (the cluster's --quota-backend-bytes)", errno: ENOSPC)
        }
        if message.contains("too large") || message.contains("too many operations") {
            return SliceError(
                .invalidArgument, "etcd: \(message) (the cluster's --max-request-bytes / --max-txn-ops)", errno: EFBIG)
        }
        if message.contains("required revision has been compacted") {
            return SliceError(.invalidArgument, "etcd: \(message)", errno: ESTALE)
        }
        return nil
    }
}

/// Requests an `EtcdClient` sent, by kind, with their total time, for `.stats`.
final class EtcdCounters: Sendable {
    enum Kind: Int, CaseIterable {
        case range, txn, status, compact

        var name: String {
            switch self {
            case .range: "range"
            case .txn: "txn"
            case .status: "status"
            case .compact: "compact"
            }
        }
    }

    /// Per kind: calls and their total nanoseconds (a lock per call is nothing beside a
    /// network round trip).
    private let totals = Locked<[(count: UInt64, nanos: UInt64)]>(Array(repeating: (0, 0), count: Kind.allCases.count))
    /// Rounds over all members that found none answering.
    let retries = Atomic<UInt64>(0)
    /// Calls that gave up (EIO).
    let failures = Atomic<UInt64>(0)
    /// Remote changes the watch delivered.
    let remoteEvents = Atomic<UInt64>(0)
    /// Point reads answered by `EtcdReadCache`.
    let cacheHits = Atomic<UInt64>(0)

    func record(_ kind: Kind, nanoseconds: UInt64) {
        totals.withLock {
            $0[kind.rawValue].count += 1
            $0[kind.rawValue].nanos += nanoseconds
        }
    }

    func count(_ kind: Kind) -> UInt64 { totals.withLock { $0[kind.rawValue].count } }
    func seconds(_ kind: Kind) -> Double { totals.withLock { Double($0[kind.rawValue].nanos) / 1e9 } }
}
