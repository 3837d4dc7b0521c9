import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SliceKV

#if canImport(Glibc)
    import Glibc
#endif

/// Follows every change under a tree's prefix with an etcd watch (`POST /v3/watch`, a stream
/// of JSON messages, one per line), and hands each revision's changed keys to `handler`.
///
/// The stream is restarted on another member when it breaks (member killed, leader lost),
/// from the revision after the last one delivered, so no change is missed while the cluster
/// keeps its history; when the cluster has compacted that history away, the handler gets
/// `nil` keys ("anything may have changed": the filesystem drops every cached node).
///
/// Threads: the stream is read on AsyncHTTPClient's event loop; messages are handled on one
/// dedicated serial queue (the handler may call into libfuse, which writes to /dev/fuse).
final class EtcdWatcher: Sendable {
    typealias Handler = @Sendable (_ revision: Int64, _ keys: [(Keyspace, [UInt8])]?) -> Void

    private let client: EtcdClient
    private let layout: EtcdLayout
    private let handler: Handler
    private let queue = DispatchQueue(label: "slice.etcd.watch")
    /// The next revision to ask for, and whether `stop` was called.
    private let state: Locked<(next: Int64, stopped: Bool, task: HTTPClient.Task<Void>?)>

    init(client: EtcdClient, layout: EtcdLayout, from revision: Int64, handler: @escaping Handler) {
        self.client = client
        self.layout = layout
        self.handler = handler
        state = Locked((revision, false, nil))
    }

    func start() { queue.async { self.connect(attempt: 0) } }

    func stop() {
        let task = state.withLock { s -> HTTPClient.Task<Void>? in
            s.stopped = true
            return s.task
        }
        task?.cancel()
    }

    /// Opens the stream on one member (round robin over attempts). Runs on `queue`.
    private func connect(attempt: Int) {
        guard let next = state.withLock({ $0.stopped ? nil : $0.next }) else { return }
        let endpoint = client.endpoints[attempt % client.endpoints.count]
        let (start, end) = layout.watchRange
        let body = Etcd.WatchRequest(
            createRequest: .init(
                key: .init(start), rangeEnd: .init(end), startRevision: .init(next), progressNotify: true))
        do {
            var request = try HTTPClient.Request(url: "http://\(endpoint)/v3/watch", method: .POST)
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(try Etcd.encoder().encode(body))
            let delegate = WatchStream { [weak self] line in
                guard let self else { return }
                self.queue.async { self.message(line) }
            }
            let task = client.watchHTTP.execute(request: request, delegate: delegate)
            let stopped = state.withLock { s -> Bool in
                s.task = task
                return s.stopped
            }
            if stopped { task.cancel() }  // `stop` ran while this one connected
            task.futureResult.whenComplete { [weak self] _ in
                guard let self else { return }
                // The stream ended (member gone, cancelled): reconnect elsewhere after a pause.
                self.queue.asyncAfter(deadline: .now() + .milliseconds(attempt == 0 ? 50 : 200)) {
                    self.connect(attempt: attempt + 1)
                }
            }
        } catch {
            queue.asyncAfter(deadline: .now() + .milliseconds(200)) { self.connect(attempt: attempt + 1) }
        }
    }

    /// One message of the stream. Runs on `queue`.
    private func message(_ line: [UInt8]) {
        guard let m = try? Etcd.decoder().decode(Etcd.WatchStreamMessage.self, from: Data(line)),
            let r = m.result
        else { return }
        if let compacted = r.compactRevision?.value, compacted > 0 {
            // History needed to resume is gone: resume from now, and say everything changed.
            state.withLock { $0.next = compacted }
            handler(compacted, nil)
        }
        if r.canceled == true {
            // The cluster ended this watch (compaction, a member leaving): start another.
            state.withLock { $0.task }?.cancel()
            return
        }
        guard let events = r.events, !events.isEmpty else {
            // A progress notification says every change up to its revision was delivered (the
            // creation answer does not: events from `next` on are still to come).
            if r.created != true, let revision = r.header?.revision?.value {
                state.withLock { $0.next = max($0.next, revision + 1) }
            }
            return
        }
        var byRevision: [(Int64, [(Keyspace, [UInt8])])] = []
        for e in events {
            let revision = e.kv.modRevision?.value ?? 0
            guard let decoded = layout.decode(e.kv.key.bytes) else { continue }
            if byRevision.last?.0 == revision {
                byRevision[byRevision.count - 1].1.append(decoded)
            } else {
                byRevision.append((revision, [decoded]))
            }
        }
        for (revision, keys) in byRevision {
            state.withLock { $0.next = max($0.next, revision + 1) }
            handler(revision, keys)
        }
    }
}

/// Splits a streamed response body into lines and hands each to `line`.
private final class WatchStream: HTTPClientResponseDelegate, Sendable {
    typealias Response = Void
    private let line: @Sendable ([UInt8]) -> Void
    /// Bytes of an unfinished line, and how many of them are known to hold no newline (a
    /// message of a large commit arrives in many parts: each is searched once).
    private let pending = Locked<(bytes: [UInt8], searched: Int)>(([], 0))

    init(line: @escaping @Sendable ([UInt8]) -> Void) { self.line = line }

    func didReceiveBodyPart(task: HTTPClient.Task<Void>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        let lines = pending.withLock { p -> [[UInt8]] in
            p.bytes.append(contentsOf: buffer.readableBytesView)
            var out: [[UInt8]] = []
            var start = 0
            var i = p.searched
            while i < p.bytes.count {
                if p.bytes[i] == UInt8(ascii: "\n") {
                    out.append(Array(p.bytes[start..<i]))
                    start = i + 1
                }
                i += 1
            }
            if start > 0 { p.bytes.removeSubrange(0..<start) }
            p.searched = p.bytes.count
            return out
        }
        for l in lines where !l.isEmpty { line(l) }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didFinishRequest(task: HTTPClient.Task<Void>) throws {}
}
