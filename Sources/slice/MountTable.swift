import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The FUSE mounts at one mount point, read from the kernel's mount table
/// (`/proc/self/mountinfo`), never from `stat`: right after a daemon dies the kernel still
/// answers `stat` of the mount point from its attribute cache, so the dead mount looks alive,
/// and a mount can hide another one stacked below it.
struct MountTable {
    /// One line of mountinfo that matters here.
    struct Layer: Equatable {
        let id: Int
        let parentID: Int
        let mountPoint: String
        let fsType: String
        /// The `fsname`: `slice:DATA_DIR` for a Slice mount.
        let source: String

        /// The data directory of a Slice mount.
        var sliceDirectory: String? { source.hasPrefix("slice:") ? String(source.dropFirst(6)) : nil }
    }

    let layers: [Layer]

    /// Reads the current table; empty when it cannot be read.
    init() {
        let text = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        self.init(mountinfo: text)
    }

    /// Parses mountinfo text (see proc(5)): `id parent major:minor root mountpoint options
    /// [optional fields...] - fstype source superoptions`.
    init(mountinfo: String) {
        var layers: [Layer] = []
        for line in mountinfo.split(separator: "\n") {
            let fields = line.split(separator: " ").map(String.init)
            guard fields.count > 6, let id = Int(fields[0]), let parent = Int(fields[1]),
                let dash = fields.firstIndex(of: "-"), dash > 5, dash + 2 < fields.count
            else { continue }
            layers.append(
                Layer(
                    id: id, parentID: parent, mountPoint: MountTable.unescape(fields[4]), fsType: fields[dash + 1],
                    source: MountTable.unescape(fields[dash + 2])))
        }
        self.layers = layers
    }

    /// The FUSE mounts at exactly `mountpoint` (a canonical path), bottom first: a mount made
    /// on top of another has the one below as its parent, so parents come first.
    func fuseLayers(at mountpoint: String) -> [Layer] {
        let here = layers.filter { $0.mountPoint == mountpoint && $0.fsType.hasPrefix("fuse") }
        var ordered: [Layer] = []
        var remaining = here
        // The bottom layer's parent is not at this mount point; each next layer sits on the last.
        var below = Set(layers.map(\.id)).subtracting(here.map(\.id))
        while let next = remaining.firstIndex(where: { below.contains($0.parentID) }) {
            let layer = remaining.remove(at: next)
            ordered.append(layer)
            below = [layer.id]
        }
        return ordered + remaining  // anything left (a table that changed under us) goes on top
    }

    /// mountinfo writes space, tab, newline and backslash as `\ooo` octal escapes.
    static func unescape(_ field: String) -> String {
        let bytes = Array(field.utf8)
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            if bytes[i] == 0x5c, i + 4 <= bytes.count,
                let value = UInt8(String(decoding: bytes[(i + 1)..<(i + 4)], as: UTF8.self), radix: 8)
            {
                out.append(value)
                i += 4
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// `path` as the mount table spells it: symlinks in its parent resolved (the mount point itself
/// is not touched: a dead mount there answers ENOTCONN).
func canonicalMountPoint(_ path: String) -> String {
    let abs = absolute(path)
    let url = URL(fileURLWithPath: abs)
    let parent = url.deletingLastPathComponent().path
    guard let resolved = realpath(parent, nil) else { return abs }
    defer { free(resolved) }
    let base = String(cString: resolved)
    let name = url.lastPathComponent
    if abs == "/" { return "/" }
    return base == "/" ? "/" + name : base + "/" + name
}
