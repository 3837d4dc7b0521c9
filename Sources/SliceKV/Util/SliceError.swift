#if canImport(Glibc)
    import Glibc
#endif

/// The one error type SliceKV throws.
///
/// `code` says what kind of failure it is; `message` is for people; `path` and `offset` name
/// the damaged file and position for corruption; `errno` carries the OS error for I/O failures.
public struct SliceError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Code: String, Sendable, Codable {
        /// A checksum or structural check failed: the data on disk is damaged.
        case corruption
        /// The operating system refused an I/O call (`errno` says why).
        case ioError
        /// The disk or quota is full (`ENOSPC`/`EDQUOT`); nothing acknowledged was lost.
        case noSpace
        /// An argument is out of range (empty key, key or value too large, bad option).
        case invalidArgument
        /// Another process (or another open handle) holds the store's LOCK file.
        case locked
        /// The store was closed, or stopped after an earlier fatal background error.
        case closed
        /// The store format on disk is newer than this library or is not a Slice store.
        case unsupportedFormat
        /// The store was opened read-only (`Options.readOnly`) and the call would write.
        case readOnly
    }

    public let code: Code
    public let message: String
    public let path: String?
    public let offset: Int64?
    public let errno: Int32?

    public init(_ code: Code, _ message: String, path: String? = nil, offset: Int64? = nil, errno: Int32? = nil) {
        self.code = code
        self.message = message
        self.path = path
        self.offset = offset
        self.errno = errno
    }

    public var description: String {
        var s = "\(code.rawValue): \(message)"
        if let path { s += " [file \(path)" + (offset.map { " at offset \($0)" } ?? "") + "]" }
        if let errno { s += " (errno \(errno): \(String(cString: strerror(errno))))" }
        return s
    }

    static func corruption(_ message: String, path: String, offset: Int64? = nil) -> SliceError {
        SliceError(.corruption, message, path: path, offset: offset)
    }

    /// Maps an OS error to `.noSpace` or `.ioError`.
    static func io(_ what: String, path: String?, errno e: Int32 = Glibc.errno) -> SliceError {
        let code: Code = (e == ENOSPC || e == EDQUOT) ? .noSpace : .ioError
        return SliceError(code, what, path: path, errno: e)
    }
}
