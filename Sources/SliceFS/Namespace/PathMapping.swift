#if canImport(Glibc)
    import Glibc
#endif

/// How keys and paths map onto each other: a key `a/b/c` is the file `/a/b/c`.
///
/// Keys are arbitrary bytes. A *name* (one path component) is 1–255 bytes, none of them NUL or
/// `/`, and not `.` or `..`. The mapping is a bijection: every key has exactly one path (its
/// canonical path), and every name in a directory means exactly one thing, so any name a local
/// filesystem accepts can be created and is listed as it was created. A key is cut at each `/`
/// into components (so `/` at an edge or `//` makes an empty component), and each component
/// gets its name on its own.
///
/// **A component is its own name** when its bytes form a name that is not reserved (below) and
/// does not *read as an escape* (below). That is nearly every name, `%` and all: `50%off`,
/// `pct%2F`, `%41`, `%25A`, `ab%+` and `%` followed by anything but two uppercase hex digits
/// are the keys of those very bytes. **Any other component is escaped**:
///
/// | in the component                                     | in its name                  |
/// |------------------------------------------------------|------------------------------|
/// | NUL byte                                             | `%00`                        |
/// | `%` before two uppercase hex digits; the `%` of a whole component `%` or `%=`; the `%` of a trailing `%+` | `%25` |
/// | the empty component                                  | `%`                          |
/// | `.` / `..`                                           | `%2E` / `%2E%2E`             |
/// | a control name at the top level (`.stats`, ...)      | `%2E` for its `.`: `%2Estats`|
/// | any other byte (other `%`s included)                 | itself                       |
///
/// For example `a\0b` is `a%00b`, `.` is `%2E`, the key `%` is `%25`, `%=` (below the top
/// level) is `%25=`, `%25` is `%2525`, `a//b` is `a/%/b`.
///
/// **Reading a name.** *Unescaping* a name turns each `%XX` (`XX` two uppercase hex digits)
/// into the byte `XX`, and the lone name `%` into the empty component. A name *reads as an
/// escape* when it holds such a `%XX` (or is `%`), and the component it unescapes to is not its
/// own name and escapes back to exactly this name: then the name is that component. Otherwise
/// the name is its own bytes. So `%00` is NUL, `%2E` is `.`, `%25` is `%`, `%2525` is `%25`;
/// but `%41` is the key `%41` (`A` is its own name `A`), and so are `%2F`, `%2e`, `%25A`,
/// `%2541` (it unescapes to `%41`, which is its own name) and `%2Estats` below the top level.
///
/// **Reserved names** name no key of their own bytes:
///
/// | name                                   | where                         | is                    |
/// |----------------------------------------|-------------------------------|-----------------------|
/// | `.stats`, `.stats.json`, `.flush`, `.compact`, `.sync` | the root      | a control file        |
/// | `%=`                                   | any directory but the root and piece directories | the value of the directory's own key, when that key is a file and also has keys below it |
/// | a first piece (below)                  | any directory but piece directories | a piece directory |
///
/// A key of a reserved name's bytes is escaped (`%2Estats`, `%25=`, `...%25+`). At the root,
/// `%=` is an ordinary name: the key `%=`. Elsewhere the `%=` entry exists while the directory's
/// key has a value; it is not a separate key, so it cannot be created (`EEXIST`), only replaced
/// by a rename onto it or removed, and nothing is below it (`ENOTDIR`).
///
/// **Long components.** A component whose name would be longer than 255 bytes (own names are at
/// most 255 bytes, so it is escaped as above) is cut into pieces: from the start, 253 bytes,
/// or 252 when the 253rd byte is a `%`, or 251 when the 252nd is; each piece but the last is
/// followed by `%+`, and each is a directory level. A name of 253–255 bytes ending in `%+` is a
/// *first piece* when some component's name starts with its bytes `s` before the `%+`, cut
/// there: `s` holds no NUL and no `%XX` other than `%00` and `%25`; each `%25` is followed by
/// two uppercase hex digits, which only a 253-byte `s` may leave to the next piece; and a
/// 253-byte `s` has no `%` in its last two bytes (a 252- or 251-byte one is a cut before a
/// `%`, so the next piece starts with `%`, and for 251 bytes then not with `%%`). Inside a
/// piece directory a name is the next piece when the same holds for the pieces so far joined
/// with it, or the last piece when the pieces joined are exactly the name of a component; a
/// piece directory holds nothing else, so any other name there is refused (`EINVAL`). A piece
/// directory is not a key: it exists while keys are below it, and creating or renaming one is
/// refused (`EINVAL`).
///
/// **A key that is a file and has keys below it** is a directory, whose `%=` entry holds the
/// key's value.
///
/// Names longer than 255 bytes, and keys longer than the store takes, are refused with
/// `ENAMETOOLONG`. The store holds no empty key, so `/%` is only ever a directory (of the keys
/// that start with `/`): creating it is refused (`EINVAL`).
public enum PathMapping {
    public static let nameMax = 255
    /// Names reserved at the root of a mount: the control files and `.snapshots` (a key with
    /// such a name at the top level shows as `%2E...`).
    public static let controlNames: Set<[UInt8]> = Set(
        [".stats", ".stats.json", ".flush", ".compact", ".sync", ".snapshots"].map { Array($0.utf8) })
    /// The entry that holds the value of a key that is also a directory.
    public static let selfName: [UInt8] = Array("%=".utf8)
    static let pieceMax = 253

    private static let percent: UInt8 = 0x25
    private static let slash: UInt8 = 0x2f
    private static let dot: UInt8 = 0x2e
    private static let plus: UInt8 = 0x2b

    @inline(__always)
    private static func isUpperHex(_ c: UInt8) -> Bool { (0x30...0x39).contains(c) || (0x41...0x46).contains(c) }

    /// Whether a key component is its own name for the simplest of reasons: not empty, `.` or
    /// `..`, no NUL or `%`, at most 255 bytes, and not a control name at the top level (the
    /// common case, checked without allocating). Such a name is also read as its own bytes.
    @inline(__always)
    static func isPlain(_ c: UnsafeRawBufferPointer, topLevel: Bool) -> Bool {
        guard !c.isEmpty, c.count <= nameMax else { return false }
        if c[0] == 0x2e {
            if c.count == 1 || (c.count == 2 && c[1] == 0x2e) { return false }
            if topLevel && controlNames.contains(where: { $0.elementsEqual(c) }) { return false }
        }
        return memchr(c.baseAddress!, 0, c.count) == nil && memchr(c.baseAddress!, Int32(percent), c.count) == nil
    }

    /// Whether `c` is a name as far as any directory goes: 1–255 bytes, no NUL or `/`, not `.`
    /// or `..`.
    private static func isName(_ c: UnsafeRawBufferPointer) -> Bool {
        guard !c.isEmpty, c.count <= nameMax else { return false }
        if c[0] == dot && (c.count == 1 || (c.count == 2 && c[1] == dot)) { return false }
        return memchr(c.baseAddress!, 0, c.count) == nil && memchr(c.baseAddress!, Int32(slash), c.count) == nil
    }

    /// Whether `c` holds something unescaping changes: a `%` before two uppercase hex digits,
    /// or the lone `%`.
    private static func hasEscape(_ c: ArraySlice<UInt8>) -> Bool {
        if c.count == 1 { return c.first == percent }
        var i = c.startIndex
        while i + 2 < c.endIndex {
            if c[i] == percent && isUpperHex(c[i + 1]) && isUpperHex(c[i + 2]) { return true }
            i += 1
        }
        return false
    }

    /// The escaped form of one component (the table in the type's comment; before splitting).
    static func escape(_ c: ArraySlice<UInt8>, topLevel: Bool) -> [UInt8] {
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
                    || (i == whole.count - 2 && whole[i + 1] == plus)
                out.append(contentsOf: hexFollows || special ? Array("%25".utf8) : [percent])
            } else {
                out.append(b)
            }
        }
        return out
    }

    /// Unescapes a name (or pieces joined): each `%XX` to its byte, the lone `%` to nothing.
    static func unescape(_ c: ArraySlice<UInt8>) -> [UInt8] {
        if c.count == 1 && c.first == percent { return [] }
        var out: [UInt8] = []
        out.reserveCapacity(c.count)
        var i = c.startIndex
        while i < c.endIndex {
            if c[i] == percent, i + 2 < c.endIndex, isUpperHex(c[i + 1]), isUpperHex(c[i + 2]) {
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

    /// Whether `n` is a reserved name in a directory that is not a piece directory.
    private static func isReserved(_ n: ArraySlice<UInt8>, topLevel: Bool) -> Bool {
        if topLevel ? controlNames.contains(Array(n)) : n.elementsEqual(selfName) { return true }
        return isPiece(n, after: [])
    }

    /// Whether the key component `c` is its own name (see the type's comment).
    static func isOwnName(_ c: ArraySlice<UInt8>, topLevel: Bool) -> Bool {
        let quick = c.withUnsafeBytes { b -> Bool? in
            if isPlain(b, topLevel: topLevel) { return true }
            return isName(b) ? nil : false
        }
        if let quick { return quick }
        if isReserved(c, topLevel: topLevel) { return false }
        return !hasEscape(c) || escaped(c, topLevel: topLevel) == nil
    }

    /// The component a name (not reserved) stands for when it reads as an escape, else nil.
    /// Terminates: the component is shorter than the name.
    private static func escaped(_ n: ArraySlice<UInt8>, topLevel: Bool) -> [UInt8]? {
        let c = unescape(n)
        guard c.count < n.count, escape(c[...], topLevel: topLevel).elementsEqual(n),
            !isOwnName(c[...], topLevel: topLevel)
        else { return nil }
        return c
    }

    /// The name of one key component (before splitting long ones): its own bytes, or escaped.
    static func encodeComponent(_ c: ArraySlice<UInt8>, topLevel: Bool) -> [UInt8] {
        isOwnName(c, topLevel: topLevel) ? Array(c) : escape(c, topLevel: topLevel)
    }

    /// The component a name stands for, in a directory that is not a piece directory, when the
    /// name is not reserved (`child(of:name:)` checks that first).
    static func decodeComponent(_ n: [UInt8], topLevel: Bool) -> [UInt8] {
        hasEscape(n[...]) ? escaped(n[...], topLevel: topLevel) ?? n : n
    }

    /// Whether `n` is the piece after `pieces` (each with its `%+`) of the name of some long
    /// component. Such a piece exists iff it does with a continuation that holds a NUL: a
    /// component with a NUL is always escaped, and the rules look at most two bytes past the
    /// piece, at bytes its length fixes (a 253-byte piece: any, so `AA` for a `%25` that wants
    /// hex digits there; 252: `%`; 251: `%` then not `%`). So one continuation decides it.
    static func isPiece(_ n: ArraySlice<UInt8>, after pieces: [[UInt8]]) -> Bool {
        guard n.count >= pieceMax, n.count <= nameMax, n.last == plus, n[n.endIndex - 2] == percent else {
            return false
        }
        let s = n.dropLast(2)
        if s.contains(0) { return false }
        // Cut at 253 bytes: the next ones are free ("AA" answers a `%25` at the end); at 252:
        // the next starts with `%`; at 251: with `%` then not `%`.
        let next: [UInt8] = Array((s.count == pieceMax ? "AA%00" : s.count == pieceMax - 1 ? "%00z" : "%00zz").utf8)
        var joined: [UInt8] = []
        for p in pieces { joined += p.dropLast(2) }
        joined += s
        joined += next
        return split(escape(unescape(joined[...])[...], topLevel: false)) == pieces + [Array(n), next]
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
        for c in key.split(separator: slash, omittingEmptySubsequences: false) {
            result.append(contentsOf: split(encodeComponent(c, topLevel: first)))
            first = false
        }
        return result
    }

    /// The canonical path of `key`, as bytes starting with `/`.
    public static func path(forKey key: [UInt8]) -> [UInt8] {
        var p: [UInt8] = []
        for c in components(forKey: key) {
            p.append(slash)
            p.append(contentsOf: c)
        }
        return p
    }

    /// A path whose every component is plain (see `isPlain`) names the key that is the path
    /// without its leading `/`: resolved in one pass. nil for anything else (the general rules
    /// then apply).
    private static func resolvePlain(_ p: UnsafeRawBufferPointer) -> Resolved? {
        guard p.count >= 1, p[0] == slash else { return nil }
        if p.count == 1 { return .root }
        var depth = 0
        var start = 1
        while start < p.count {
            var end = start
            while end < p.count && p[end] != slash { end += 1 }
            guard isPlain(UnsafeRawBufferPointer(rebasing: p[start..<end]), topLevel: depth == 0) else { return nil }
            depth += 1
            if end == p.count { break }
            start = end + 1
            if start == p.count { return nil }  // trailing '/'
        }
        return Resolved(key: Array(p[1...]), isSelfEntry: false, isRoot: false, depth: depth)
    }

    public enum Failure: Error, Equatable, Sendable {
        /// A name is longer than 255 bytes (`ENAMETOOLONG`).
        case nameTooLong
        /// No key has this name here: in a piece directory, a name that does not continue the
        /// component; `.`, `..`, or a name with NUL or `/` (`EINVAL`).
        case notCanonical
        /// A name below a `%=` entry, which is a file (`ENOTDIR`).
        case notDirectory
        /// A control file's name at the root: not a key (the filesystem answers these itself).
        case controlName
    }

    /// What a path names: the key, and whether it is the `%=` entry of a directory.
    public struct Resolved: Equatable, Sendable {
        public var key: [UInt8]
        public var isSelfEntry: Bool
        /// The mount's root. (`/%` also has the empty key, as a directory of keys under `/`.)
        public var isRoot: Bool
        /// A path ending in a `%+` piece of a long component: a directory of the keys that
        /// continue that component (its key is the partial component, without a `/`).
        public var isPieceDirectory = false
        /// Number of path components.
        public var depth = 0
        /// In a piece directory: its pieces so far (each with its `%+`), and where the long
        /// component starts in `key`.
        var pieces: [[UInt8]] = []
        var componentStart = 0

        /// The root of a mount.
        public static let root = Resolved(key: [], isSelfEntry: false, isRoot: true, depth: 0)

        /// Prefix of the keys inside this path when it is a directory.
        public var childPrefix: [UInt8] { isRoot || isPieceDirectory ? key : key + [0x2f] }
    }

    /// What the name `name` in the directory `parent` is (the root, a directory or a piece
    /// directory; `.` and `..` are the caller's): an ordinary key, a piece directory, or the
    /// `%=` entry. Every name that is not reserved names a key. A plain name costs the key's
    /// allocation and nothing more.
    public static func child(of parent: Resolved, name: [UInt8]) -> Result<Resolved, Failure> {
        guard name.count <= nameMax else { return .failure(.nameTooLong) }
        guard name.withUnsafeBytes({ isName($0) }) else { return .failure(.notCanonical) }
        if parent.isSelfEntry { return .failure(.notDirectory) }
        let depth = parent.depth + 1
        if parent.isPieceDirectory {
            if isPiece(name[...], after: parent.pieces) {
                var r = Resolved(
                    key: parent.key + unescape(name.dropLast(2)), isSelfEntry: false, isRoot: false,
                    isPieceDirectory: true, depth: depth)
                r.pieces = parent.pieces + [name]
                r.componentStart = parent.componentStart
                return .success(r)
            }
            // The last piece: the pieces joined must be a component's name, cut just so.
            var joined: [UInt8] = []
            for p in parent.pieces { joined += p.dropLast(2) }
            joined += name
            let component = unescape(joined[...])
            let start = parent.componentStart
            guard split(encodeComponent(component[...], topLevel: start == 0)) == parent.pieces + [name] else {
                return .failure(.notCanonical)
            }
            return .success(
                Resolved(key: parent.key.prefix(start) + component, isSelfEntry: false, isRoot: false, depth: depth))
        }
        let topLevel = parent.isRoot
        func key(_ component: [UInt8]) -> [UInt8] {
            var key: [UInt8] = []
            key.reserveCapacity(parent.key.count + 1 + component.count)
            key += parent.key
            if !topLevel { key.append(slash) }
            key += component
            return key
        }
        if name.withUnsafeBytes({ isPlain($0, topLevel: topLevel) }) {
            return .success(Resolved(key: key(name), isSelfEntry: false, isRoot: false, depth: depth))
        }
        if topLevel && controlNames.contains(name) { return .failure(.controlName) }
        if !topLevel && name == selfName {
            return .success(Resolved(key: parent.key, isSelfEntry: true, isRoot: false, depth: depth))
        }
        if isPiece(name[...], after: []) {
            var r = Resolved(
                key: key(unescape(name.dropLast(2))), isSelfEntry: false, isRoot: false, isPieceDirectory: true,
                depth: depth)
            r.pieces = [name]
            r.componentStart = parent.childPrefix.count
            return .success(r)
        }
        return .success(
            Resolved(
                key: key(decodeComponent(name, topLevel: topLevel)), isSelfEntry: false, isRoot: false, depth: depth))
    }

    /// An entry of a directory listing: the name, and whether it names the key itself (else it
    /// is a directory on the way to the key: its first component's, or a piece).
    public struct ChildEntry: Equatable, Sendable {
        public var name: [UInt8]
        public var namesKey: Bool
    }

    /// The entry through which the directory `parent` leads to `key`: for a key below it, the
    /// first path component of its path below `parent`; for the directory's own key, `%=`; nil
    /// when `key` is not reached through `parent`. `child(of: parent, name:)` with that name
    /// gives `key` back (or a directory above it).
    public static func entry(ofChild key: [UInt8], in parent: Resolved) -> ChildEntry? {
        if parent.isSelfEntry { return nil }
        if parent.isPieceDirectory {
            let start = parent.componentStart
            guard key.count > parent.key.count, key.starts(with: parent.key) else { return nil }
            let end = key[start...].firstIndex(of: slash) ?? key.endIndex
            let pieces = split(encodeComponent(key[start..<end], topLevel: start == 0))
            let n = parent.pieces.count
            guard pieces.count > n, pieces.starts(with: parent.pieces) else { return nil }
            return ChildEntry(name: pieces[n], namesKey: end == key.endIndex && pieces.count == n + 1)
        }
        if !parent.isRoot && key == parent.key { return ChildEntry(name: selfName, namesKey: true) }
        let start = parent.isRoot ? 0 : parent.key.count + 1
        guard key.count >= start, key.starts(with: parent.key), parent.isRoot || key[start - 1] == slash else {
            return nil
        }
        let end = key[start...].firstIndex(of: slash) ?? key.endIndex
        let component = key[start..<end]
        if component.withUnsafeBytes({ isPlain($0, topLevel: parent.isRoot) }) {
            return ChildEntry(name: Array(component), namesKey: end == key.endIndex)
        }
        let pieces = split(encodeComponent(component, topLevel: parent.isRoot))
        return ChildEntry(name: pieces[0], namesKey: end == key.endIndex && pieces.count == 1)
    }

    /// The name through which the directory `parent` leads to `key` (see `entry(ofChild:in:)`).
    public static func name(ofChild key: [UInt8], in parent: Resolved) -> [UInt8]? {
        entry(ofChild: key, in: parent)?.name
    }

    /// The key a path names. The root is the empty key. Each name is read as
    /// `child(of:name:)` reads it, from the root down.
    public static func resolve(_ path: [UInt8]) -> Result<Resolved, Failure> {
        if let plain = path.withUnsafeBytes({ resolvePlain($0) }) { return .success(plain) }
        let names = path.split(separator: slash, omittingEmptySubsequences: true)
        for c in names where c.count > nameMax { return .failure(.nameTooLong) }
        var r = Resolved.root
        for c in names {
            switch child(of: r, name: Array(c)) {
            case .success(let next): r = next
            case .failure(let f): return .failure(f)
            }
        }
        return .success(r)
    }
}
