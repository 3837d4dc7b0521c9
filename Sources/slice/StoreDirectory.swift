import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Whether a path holds a store, and making a directory for a new one. A store is present iff
/// its directory has a CURRENT file (the engine writes it before anything else is usable), so a
/// mistyped path is told apart from an empty store without touching it.
enum StoreDirectory {
    /// Throws a message saying what is at `path` instead of a store. Creates nothing.
    static func requireStore(at path: String) throws {
        var st = stat()
        guard stat(path, &st) == 0 else {
            let reason = errno == ENOENT ? "no such directory" : String(cString: strerror(errno))
            throw CLIError("no store at \(path): \(reason) (put, import and mount create one)")
        }
        guard st.st_mode & S_IFMT == S_IFDIR else { throw CLIError("no store at \(path): not a directory") }
        guard access(path + "/CURRENT", F_OK) == 0 else {
            throw CLIError(
                "no store at \(path): the directory has no CURRENT file (check the path; put, import and mount create a store)"
            )
        }
    }

    /// `mkdir -p` whose last directory, the store's own, only its owner may enter: the files in
    /// it are the store's whole content.
    static func create(_ path: String) throws {
        let abs = absolute(path)
        var prefix = ""
        let components = abs.split(separator: "/")
        for (i, component) in components.enumerated() {
            prefix += "/" + component
            let last = i == components.count - 1
            if mkdir(prefix, last ? 0o700 : 0o755) != 0 && errno != EEXIST {
                throw CLIError("cannot create \(prefix): \(String(cString: strerror(errno)))")
            }
        }
    }
}
