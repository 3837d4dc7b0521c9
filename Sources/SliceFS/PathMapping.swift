#if canImport(Glibc)
    import Glibc
#endif

/// How keys and paths map onto each other: a key `a/b/c` is the file `/a/b/c`.
///
/// Keys are arbitrary bytes; path components cannot be empty, `.` or `..`, cannot hold NUL or
/// `/`, and are at most 255 bytes. So a component is *escaped* where, and only where, it has to
/// be, and every key has exactly one path (its canonical path):
///
/// | in the key                                  | in the path                         |
/// |---------------------------------------------|-------------------------------------|
/// | NUL byte                                    | `%00`                               |
/// | `%` that would read as an escape: before two uppercase hex digits, a whole component `%` or `%=`, or a trailing `%+` | `%25` |
/// | empty component (`/` at an edge, `//`)      | `%`                                 |
/// | component `.` / `..`                        | `%2E` / `%2E%2E`                    |
/// | top-level `.stats` etc. (control names)     | `%2Estats` etc.                     |
/// | component longer than 255 bytes             | split into pieces of at most 253 bytes, each but the last followed by `%+` (a directory level) |
/// | key that is a file *and* has keys below it  | the directory, with the value in its entry `%=` |
///
/// Any other `%` is literal, so ordinary names such as `50%off` need no escaping. Reading a
/// path decodes `%XX` (uppercase hex) and the forms above; a path that is not the canonical
/// path of its key (for example `%41` for `A`) is refused with `EINVAL`, so one key never has
/// two names.
public enum PathMapping {
    public static let nameMax = 255
    /// Names of the control files at the root of a mount.
    public static let controlNames: Set<[UInt8]> = Set(
        [".stats", ".stats.json", ".flush", ".compact", ".sync"].map { Array($0.utf8) })
    /// The entry that holds the value of a key that is also a directory.
    public static let selfName: [UInt8] = Array("%=".utf8)
    static let pieceMax = 253

    private static let percent: UInt8 = 0x25
    private static let hexDigits = Array("0123456789ABCDEF".utf8)

    @inline(__always)
    private static func isUpperHex(_ c: UInt8) -> Bool { (0x30...0x39).contains(c) || (0x41...0x46).contains(c) }

    /// Whether a key component is its own path component: not empty, `.` or `..`, no NUL or
    /// `%`, at most 255 bytes, and not a control name at the top level (the common case,
    /// checked without allocating).
    @inline(__always)
    static func isPlain(_ c: UnsafeRawBufferPointer, topLevel: Bool) -> Bool {
        guard !c.isEmpty, c.count <= nameMax else { return false }
        if c[0] == 0x2e {
            if c.count == 1 || (c.count == 2 && c[1] == 0x2e) { return false }
            if topLevel && controlNames.contains(Array(c)) { return false }
        }
        return memchr(c.baseAddress!, 0, c.count) == nil && memchr(c.baseAddress!, Int32(percent), c.count) == nil
    }

    /// The escaped form of one key component (before splitting long ones).
    static func encodeComponent(_ c: ArraySlice<UInt8>, topLevel: Bool) -> [UInt8] {
        if c.withUnsafeBytes({ isPlain($0, topLevel: topLevel) }) { return Array(c) }
        if c.isEmpty { return [percent] }
        if c.elementsEqual([0x2e]) { return Array("%2E".utf8) }
        if c.elementsEqual([0x2e, 0x2e]) { return Array("%2E%2E".utf8) }
        var out: [UInt8] = []
        out.reserveCapacity(c.count + 4)
        let whole = Array(c)
        if topLevel && controlNames.contains(whole) {
            return Array("%2E".utf8) + whole.dropFirst()
        }
        for i in whole.indices {
            let b = whole[i]
            if b == 0 {
                out.append(contentsOf: Array("%00".utf8))
            } else if b == percent {
                let hexFollows = i + 2 < whole.count && isUpperHex(whole[i + 1]) && isUpperHex(whole[i + 2])
                let special =
                    whole.count == 1 || (whole.count == 2 && whole[1] == 0x3d)
                    || (i == whole.count - 2 && whole[i + 1] == 0x2b)
                out.append(contentsOf: hexFollows || special ? Array("%25".utf8) : [percent])
            } else {
                out.append(b)
            }
        }
        return out
    }

    /// Splits an encoded component into path components of at most `nameMax` bytes.
    static func split(_ encoded: [UInt8]) -> [[UInt8]] {
        guard encoded.count > nameMax else { return [encoded] }
        var pieces: [[UInt8]] = []
        var start = 0
        while encoded.count - start > nameMax {
            var end = start + pieceMax
            // The last piece keeps at least 3 bytes, so it can never read as ".", "..", "%" or "%=".
            if encoded.count - end < 3 { end = encoded.count - 3 }
            // Never cut an escape sequence in two.
            if encoded[end - 1] == percent { end -= 1 } else if encoded[end - 2] == percent { end -= 2 }
            pieces.append(Array(encoded[start..<end]) + Array("%+".utf8))
            start = end
        }
        pieces.append(Array(encoded[start...]))
        return pieces
    }

    /// The path components of `key` (without the `%=` of the file-and-directory case).
    public static func components(forKey key: [UInt8]) -> [[UInt8]] {
        var result: [[UInt8]] = []
        var first = true
        for c in key.split(separator: 0x2f, omittingEmptySubsequences: false) {
            result.append(contentsOf: split(encodeComponent(c, topLevel: first)))
            first = false
        }
        return result
    }

    /// The canonical path of `key`, as bytes starting with `/`.
    public static func path(forKey key: [UInt8]) -> [UInt8] {
        var p: [UInt8] = []
        for c in components(forKey: key) {
            p.append(0x2f)
            p.append(contentsOf: c)
        }
        return p
    }

    /// A path whose every component is plain (see `isPlain`) names the key that is the path
    /// without its leading `/`: resolved in one pass, without the canonical re-encoding check.
    /// nil for anything else (the general rules then apply).
    private static func resolvePlain(_ p: UnsafeRawBufferPointer) -> Resolved? {
        guard p.count >= 1, p[0] == 0x2f else { return nil }
        if p.count == 1 { return Resolved(key: [], isSelfEntry: false, isRoot: true, depth: 0) }
        var depth = 0
        var start = 1
        while start < p.count {
            var end = start
            while end < p.count && p[end] != 0x2f { end += 1 }
            guard isPlain(UnsafeRawBufferPointer(rebasing: p[start..<end]), topLevel: depth == 0) else { return nil }
            depth += 1
            if end == p.count { break }
            start = end + 1
            if start == p.count { return nil }  // trailing '/'
        }
        return Resolved(key: Array(p[1...]), isSelfEntry: false, isRoot: false, depth: depth)
    }

    /// Decodes one (joined) path component.
    static func decodeComponent(_ c: [UInt8]) -> [UInt8] {
        if c == [percent] { return [] }
        var out: [UInt8] = []
        out.reserveCapacity(c.count)
        var i = 0
        while i < c.count {
            if c[i] == percent, i + 2 < c.count, isUpperHex(c[i + 1]), isUpperHex(c[i + 2]) {
                out.append(hexValue(c[i + 1]) << 4 | hexValue(c[i + 2]))
                i += 3
            } else {
                out.append(c[i])
                i += 1
            }
        }
        return out
    }

    private static func hexValue(_ c: UInt8) -> UInt8 { c <= 0x39 ? c - 0x30 : c - 0x41 + 10 }

    public enum Failure: Error, Equatable {
        /// A component is longer than 255 bytes.
        case nameTooLong
        /// The path is not the canonical path of any key.
        case notCanonical
    }

    /// What a path names: the key, and whether it is the `%=` entry of a directory.
    public struct Resolved: Equatable {
        public var key: [UInt8]
        public var isSelfEntry: Bool
        /// The mount's root. (`/%` also has the empty key, as a directory of keys under `/`.)
        public var isRoot: Bool
        /// A path ending in a `%+` piece of a long component: a directory of the keys that
        /// continue that component (its key is the partial component, without a `/`).
        public var isPieceDirectory = false
        /// Number of path components.
        public var depth = 0

        /// Prefix of the keys inside this path when it is a directory.
        public var childPrefix: [UInt8] { isRoot || isPieceDirectory ? key : key + [0x2f] }
    }

    /// The key a path names. The root is the empty key.
    public static func resolve(_ path: [UInt8]) -> Result<Resolved, Failure> {
        if let plain = path.withUnsafeBytes({ resolvePlain($0) }) { return .success(plain) }
        var comps = path.split(separator: 0x2f, omittingEmptySubsequences: true).map(Array.init)
        for c in comps where c.count > nameMax { return .failure(.nameTooLong) }
        var isSelf = false
        if comps.last == selfName {
            isSelf = true
            comps.removeLast()
            if comps.isEmpty { return .failure(.notCanonical) }
        }
        var joined: [[UInt8]] = []
        var pending: [UInt8]?
        for c in comps {
            if c.count >= 2 && c[c.count - 2] == percent && c[c.count - 1] == 0x2b {
                pending = (pending ?? []) + c.dropLast(2)
            } else {
                joined.append((pending ?? []) + c)
                pending = nil
            }
        }
        var key: [UInt8] = []
        for (i, c) in joined.enumerated() {
            if i > 0 { key.append(0x2f) }
            key.append(contentsOf: decodeComponent(c))
        }
        if let pending {
            // A directory level inside a long component: canonical when its pieces re-encode
            // to themselves.
            if isSelf { return .failure(.notCanonical) }
            let partial = decodeComponent(pending)
            guard encodeComponent(partial[...], topLevel: joined.isEmpty) == pending,
                joined.isEmpty || components(forKey: key) == Array(comps.prefix(joined.count))
            else { return .failure(.notCanonical) }
            if !joined.isEmpty { key.append(0x2f) }
            key.append(contentsOf: partial)
            return .success(
                Resolved(key: key, isSelfEntry: false, isRoot: false, isPieceDirectory: true, depth: comps.count))
        }
        guard joined.isEmpty || components(forKey: key) == comps else { return .failure(.notCanonical) }
        return .success(Resolved(key: key, isSelfEntry: isSelf, isRoot: joined.isEmpty, depth: comps.count))
    }
}
