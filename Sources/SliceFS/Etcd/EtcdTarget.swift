/// Where a shared tree lives: `etcd://HOST:PORT[,HOST:PORT...]/PREFIX[?LIMITS]`.
///
/// ```
/// etcd://127.0.0.1:23791,127.0.0.1:23792,127.0.0.1:23793/team
/// etcd://10.0.0.5:2379/projects-a?max_txn_ops=128&max_request_bytes=1572864
/// ```
/// HOST:PORT are client URLs of the cluster's members (plain HTTP; every member answers, the
/// client moves on when one does not). PREFIX is the tree's root in etcd's key space
/// (`EtcdLayout`); it must not be empty nor contain `/` (trees never nest). LIMITS tell the client what the cluster accepts, so a
/// change too large for it is refused whole with EFBIG before it is sent: `max_txn_ops`
/// (etcd's `--max-txn-ops`, default here 1024), `max_request_bytes` (`--max-request-bytes`,
/// default 8 MiB), `quota_bytes` (`--quota-backend-bytes`, default 8 GiB; what `df` shows).
public struct EtcdTarget: Sendable, Equatable {
    public var endpoints: [String]
    public var prefix: String
    public var limits: EtcdLimits

    public static let scheme = "etcd://"

    public static func isEtcdURL(_ s: String) -> Bool { s.hasPrefix(scheme) }

    /// nil with a reason when `url` is not such a URL.
    public init(parsing url: String) throws(EtcdTarget.Invalid) {
        guard url.hasPrefix(EtcdTarget.scheme) else { throw Invalid("\(url): not an etcd:// URL") }
        var rest = Substring(url.dropFirst(EtcdTarget.scheme.count))
        var query = Substring("")
        if let q = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: q)...]
            rest = rest[..<q]
        }
        guard let slash = rest.firstIndex(of: "/") else { throw Invalid("\(url): no /PREFIX after the members") }
        let hosts = rest[..<slash].split(separator: ",").map(String.init)
        prefix = String(rest[rest.index(after: slash)...])
        while prefix.hasSuffix("/") { prefix.removeLast() }
        guard !hosts.isEmpty else { throw Invalid("\(url): no HOST:PORT") }
        for h in hosts {
            guard let colon = h.lastIndex(of: ":"), let port = Int(h[h.index(after: colon)...]),
                (1...65535).contains(port),
                colon != h.startIndex
            else { throw Invalid("\(url): '\(h)' is not HOST:PORT") }
        }
        guard !prefix.isEmpty else { throw Invalid("\(url): the PREFIX must not be empty") }
        guard !prefix.utf8.contains(0) else { throw Invalid("\(url): the PREFIX holds a NUL byte") }
        // A tree's paths are PREFIX/…: a prefix with a slash would lie inside another tree.
        guard !prefix.contains("/") else { throw Invalid("\(url): the PREFIX must not contain '/'") }
        endpoints = hosts
        limits = EtcdLimits()
        for pair in query.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2, let n = Int(kv[1]), n > 0 else { throw Invalid("\(url): bad option '\(pair)'") }
            switch kv[0] {
            case "max_txn_ops":
                guard n >= 64 else { throw Invalid("\(url): max_txn_ops must be at least 64") }
                limits.maxOperations = n
            case "max_request_bytes":
                // A FUSE write of 1 MiB touches up to 17 chunks of 64 KiB, committed together.
                guard n >= 1_572_864 else {
                    throw Invalid("\(url): max_request_bytes must be at least 1572864 (etcd's default)")
                }
                limits.maxRequestBytes = n
            case "quota_bytes": limits.quotaBytes = n
            default: throw Invalid("\(url): unknown option '\(kv[0])'")
            }
        }
    }

    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
        init(_ d: String) { description = d }
    }
}

/// What an etcd cluster accepts (`--max-txn-ops`, `--max-request-bytes`,
/// `--quota-backend-bytes`); the defaults are what `scripts/etcd-cluster.sh` starts.
public struct EtcdLimits: Sendable, Equatable {
    public var maxOperations = 1024
    public var maxRequestBytes = 8 << 20
    public var quotaBytes = 8 << 30

    public init() {}
}
