import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A real 3-member etcd cluster on loopback (`scripts/etcd-cluster.sh`), in its own directory
/// and on its own ports, stopped by `stop`.
final class EtcdTestCluster: @unchecked Sendable {
    let dir: String
    let base: Int
    private var stopped = false

    static var script: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/etcd-cluster.sh").path
    }

    init(base: Int = 24790) throws {
        self.base = base
        dir = "/tmp/slice-etcd-test-\(getpid())-\(base)"
        let r = try cluster("start")
        guard r.status == 0 else { throw TestFailure("etcd cluster did not start: \(r.err) \(r.out)") }
    }

    @discardableResult
    func cluster(_ args: String...) throws -> (status: Int32, out: String, err: String) {
        var a = [EtcdTestCluster.script]
        a += args
        if args.first != "endpoints" { a.append(dir) }
        return try run("/bin/bash", a, environment: ["SLICE_ETCD_BASE": String(base), "SLICE_ETCD_DIR": dir])
    }

    /// Members' client addresses.
    var endpoints: [String] { (1...3).map { "127.0.0.1:\(base + $0)" } }

    /// The mount URL of the tree under `prefix`.
    func url(_ prefix: String, query: String = "") -> String {
        "etcd://" + endpoints.joined(separator: ",") + "/" + prefix + (query.isEmpty ? "" : "?" + query)
    }

    /// The member (1-3) that leads now, asked of etcd itself.
    func leader() throws -> Int? {
        let r = try run(
            "/usr/bin/etcdctl",
            [
                "--endpoints", endpoints.joined(separator: ","), "endpoint", "status", "--write-out=simple",
                "--command-timeout=2s",
            ], environment: ["ETCDCTL_API": "3"])
        for line in r.out.split(separator: "\n") {
            let fields = line.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            // endpoint, ID, version, db size, is leader, ...
            if fields.count > 4, fields[4] == "true", let i = endpoints.firstIndex(of: fields[0]) { return i + 1 }
        }
        return nil
    }

    func kill(_ member: Int) throws { try cluster("kill", String(member)) }
    func revive(_ member: Int) throws { try cluster("revive", String(member)) }

    func stop() {
        guard !stopped else { return }
        stopped = true
        _ = try? cluster("stop")
    }

    deinit { stop() }
}

/// Polls `condition` until it holds or `seconds` pass; true if it held.
func eventually(seconds: Double = 5, _ condition: () throws -> Bool) rethrows -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while true {
        if try condition() { return true }
        if Date() > end { return false }
        usleep(50_000)
    }
}
