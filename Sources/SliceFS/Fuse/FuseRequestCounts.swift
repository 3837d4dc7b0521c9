import Synchronization

/// How many requests of each kind the kernel has sent: the round trips behind each shell
/// operation (a `touch` is LOOKUP, CREATE, SETATTR, FLUSH, RELEASE), counted by the bridge
/// and shown in `.stats` and `.stats.json`. Relaxed atomic adds: one per request.
public final class FuseRequestCounts: Sendable {
    /// Request kinds, named as `fuse_lowlevel_ops` names them.
    public enum Kind: Int, CaseIterable, Sendable {
        case lookup, forget, batchForget, getattr, setattr, readlink, mknod, mkdir, unlink, rmdir, symlink, rename
        case link, open, create, read, write, flush, release, fsync, fallocate, lseek, opendir, readdir
        case readdirplus, releasedir, fsyncdir, statfs, setxattr, getxattr, listxattr, removexattr, access

        /// snake_case, as in metric labels.
        public var name: String {
            switch self {
            case .batchForget: return "batch_forget"
            default: return "\(self)"
            }
        }
    }

    private final class Counter: Sendable {
        let value = Atomic<Int>(0)
    }

    private let counters = Kind.allCases.map { _ in Counter() }

    public init() {}

    @inline(__always)
    public func add(_ kind: Kind) { counters[kind.rawValue].value.add(1, ordering: .relaxed) }

    public func count(_ kind: Kind) -> Int { counters[kind.rawValue].value.load(ordering: .relaxed) }

    /// The kinds seen at least once, with their counts.
    public var nonZero: [(kind: Kind, count: Int)] {
        Kind.allCases.compactMap { k in
            let n = count(k)
            return n > 0 ? (k, n) : nil
        }
    }

    /// Prometheus text lines: `slice_fuse_requests_total{op="lookup"} 12`.
    public var prometheusText: String {
        var out = "# HELP slice_fuse_requests_total FUSE requests received, by kind\n"
        out += "# TYPE slice_fuse_requests_total counter\n"
        for k in Kind.allCases { out += "slice_fuse_requests_total{op=\"\(k.name)\"} \(count(k))\n" }
        return out
    }

    /// A JSON object of the kinds seen: `{"lookup":12,"create":3}`.
    public var jsonObject: String {
        "{" + nonZero.map { "\"\($0.kind.name)\":\($0.count)" }.joined(separator: ",") + "}"
    }
}
