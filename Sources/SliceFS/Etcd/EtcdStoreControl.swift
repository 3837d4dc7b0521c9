import Foundation
import SliceKV

#if canImport(Glibc)
    import Glibc
#endif

/// The control files of a mount on an etcd cluster: `.stats` shows each member's health and
/// this client's requests; `.flush` and `.sync` have nothing to do once the open files are
/// committed (a transaction is on a quorum's synced log when it is answered); `.compact`
/// compacts the cluster's history up to 1,000 revisions ago (cluster-wide, as etcd compacts),
/// so the space of overwritten and deleted values can be reused (etcd keeps every revision
/// until then; the cluster script also compacts every minute).
extension EtcdStore: StoreControl {
    var maxValueSize: Int { Int.max }
    var isReadOnly: Bool { false }
    var syncsEveryWrite: Bool { true }
    var spaceReserveShortfall: Int { 0 }
    var localDirectory: String? { nil }

    /// Each member's status (nil: it did not answer within a second or so).
    private func memberStatus() -> [(endpoint: String, status: Etcd.StatusResponse?)] {
        client.endpoints.indices.map { i in
            (
                client.endpoints[i],
                try? client.call(
                    "/v3/maintenance/status", Etcd.Empty(), as: Etcd.StatusResponse.self, kind: .status, member: i)
            )
        }
    }

    func statsText() -> String {
        var out =
            "# Slice mount on etcd \(client.endpoints.joined(separator: ",")) prefix \(String(decoding: layout.prefix, as: UTF8.self))\n"
        for (endpoint, s) in memberStatus() {
            let e = "endpoint=\"\(endpoint)\""
            out += "slice_etcd_member_up{\(e)} \(s == nil ? 0 : 1)\n"
            guard let s else { continue }
            out += "slice_etcd_member_is_leader{\(e)} \(s.leader != nil && s.leader == s.header?.memberId ? 1 : 0)\n"
            out += "slice_etcd_member_db_size_bytes{\(e)} \(s.dbSize?.value ?? 0)\n"
            out += "slice_etcd_member_db_size_in_use_bytes{\(e)} \(s.dbSizeInUse?.value ?? 0)\n"
            out += "slice_etcd_member_raft_index{\(e)} \(s.raftIndex?.value ?? 0)\n"
        }
        out += "slice_etcd_revision_seen \(seenRevision.load(ordering: .relaxed))\n"
        for kind in EtcdCounters.Kind.allCases {
            out += "slice_etcd_requests_total{op=\"\(kind.name)\"} \(client.counters.count(kind))\n"
            out += "slice_etcd_request_seconds_total{op=\"\(kind.name)\"} \(client.counters.seconds(kind))\n"
        }
        out += "slice_etcd_retry_rounds_total \(client.counters.retries.load(ordering: .relaxed))\n"
        out += "slice_etcd_failed_requests_total \(client.counters.failures.load(ordering: .relaxed))\n"
        out += "slice_etcd_remote_changes_total \(client.counters.remoteEvents.load(ordering: .relaxed))\n"
        out += "slice_etcd_cached_reads_total \(client.counters.cacheHits.load(ordering: .relaxed))\n"
        return out
    }

    func statsJSON() -> String {
        var members: [[String: Any]] = []
        for (endpoint, s) in memberStatus() {
            var m: [String: Any] = ["endpoint": endpoint, "up": s != nil]
            if let s {
                m["leader"] = s.leader != nil && s.leader == s.header?.memberId
                m["dbSize"] = s.dbSize?.value ?? 0
                m["dbSizeInUse"] = s.dbSizeInUse?.value ?? 0
                m["raftIndex"] = s.raftIndex?.value ?? 0
                m["version"] = s.version ?? ""
            }
            members.append(m)
        }
        var requests: [String: Any] = [:]
        for kind in EtcdCounters.Kind.allCases {
            requests[kind.name] = ["count": client.counters.count(kind), "seconds": client.counters.seconds(kind)]
        }
        let object: [String: Any] = [
            "backend": "etcd",
            "prefix": String(decoding: layout.prefix, as: UTF8.self),
            "members": members,
            "revisionSeen": seenRevision.load(ordering: .relaxed),
            "requests": requests,
            "retryRounds": client.counters.retries.load(ordering: .relaxed),
            "failedRequests": client.counters.failures.load(ordering: .relaxed),
            "remoteChanges": client.counters.remoteEvents.load(ordering: .relaxed),
            "cachedReads": client.counters.cacheHits.load(ordering: .relaxed),
        ]
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else {
            return "{}"
        }
        return String(decoding: data, as: UTF8.self)
    }

    func flush() throws {}

    func compact() throws {
        let r = try client.call(
            "/v3/kv/range", Etcd.RangeRequest(key: .init(layout.prefix), countOnly: true), as: Etcd.RangeResponse.self,
            kind: .range)
        // Compaction is cluster-wide (every prefix): the last 1,000 revisions stay, so scans
        // and watches of other mounts in progress are not cut off.
        guard let newest = r.header?.revision?.value, newest > 1_001 else { return }
        let revision = newest - 1_000
        do {
            _ = try client.call(
                "/v3/kv/compaction", Etcd.CompactionRequest(revision: .init(revision), physical: true),
                as: Etcd.Empty.self, kind: .compact)
        } catch let e as SliceError where e.errno == ESTALE {
            // Already compacted at or past this revision (the cluster's own compactor).
        }
    }

    /// Sizes from the cluster: its quota (`limits.quotaBytes`) as the size, the largest
    /// member database as used.
    func statfs(_ st: UnsafeMutablePointer<statvfs>) throws {
        let used = memberStatus().compactMap { $0.status?.dbSize?.value }.max() ?? 0
        let block: UInt64 = 4096
        let total = UInt64(limits.quotaBytes) / block
        let free = total > UInt64(used) / block ? total - UInt64(used) / block : 0
        st.pointee = statvfs()
        st.pointee.f_bsize = UInt(block)
        st.pointee.f_frsize = UInt(block)
        st.pointee.f_blocks = fsblkcnt_t(total)
        st.pointee.f_bfree = fsblkcnt_t(free)
        st.pointee.f_bavail = fsblkcnt_t(free)
        st.pointee.f_files = 1 << 32
        st.pointee.f_ffree = 1 << 32
        st.pointee.f_favail = 1 << 32
    }
}
