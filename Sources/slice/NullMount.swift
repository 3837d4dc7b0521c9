import ArgumentParser
import SliceFS

#if canImport(Glibc)
    import Glibc
#endif

/// Benchmark and test support: serves an in-memory `NullFileSystem` through the low-level FUSE
/// bridge, in the foreground, until unmounted or sent SIGTERM/SIGINT/SIGHUP. What a mount
/// costs with no store behind it: the FUSE request ceiling.
struct NullMount: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "null-mount",
        abstract: "Benchmark support: mount an in-memory filesystem (no store) in the foreground.",
        discussion: """
            Prints "mounted at MOUNTPOINT" on standard error once the mount is live. Options (-o, \
            comma-separated) go to the low-level FUSE session: allow_other, allow_root, \
            default_permissions, auto_unmount, ro, fsname=, subtype=, debug, ...
            """,
        shouldDisplay: false)

    @Argument(help: "An existing empty directory to mount on.") var mountpoint: String
    @Option(name: .short, help: "Mount options, comma-separated.") var o: [String] = []

    func run() throws {
        try runReporting {
            let mnt = absolute(mountpoint)
            var options = o.flatMap { $0.split(separator: ",").map(String.init) }
            if !options.contains(where: { $0.hasPrefix("fsname=") }) { options.append("fsname=slice-null") }
            if !options.contains(where: { $0.hasPrefix("subtype=") }) { options.append("subtype=slice-null") }
            // As `slice mount`: the kernel checks modes and owners whenever anyone but root
            // can reach the mount.
            let othersCanReach = geteuid() != 0 || options.contains { $0 == "allow_other" || $0 == "allow_root" }
            if othersCanReach && !options.contains("default_permissions") { options.append("default_permissions") }
            try MountLayers.clearDead(at: mnt)
            try FuseSession.serve(NullFileSystem(), at: mnt, options: options) {
                Terminal.error("mounted at \(mnt)")
            }
            Terminal.error("unmounted \(mnt)")
        }
    }
}
