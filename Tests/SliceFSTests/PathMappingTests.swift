import Testing

@testable import SliceFS

@Suite struct PathMappingTests {
    typealias Resolved = PathMapping.Resolved

    func b(_ s: String) -> [UInt8] { Array(s.utf8) }

    func roundTrip(_ key: [UInt8]) -> [UInt8]? {
        guard case .success(let r) = PathMapping.resolve(PathMapping.path(forKey: key)) else { return nil }
        return r.key
    }

    func resolve(_ path: String) -> Result<Resolved, PathMapping.Failure> { PathMapping.resolve(b(path)) }
    func key(_ path: String) -> [UInt8]? { try? resolve(path).get().key }
    func path(_ key: [UInt8]) -> String { String(decoding: PathMapping.path(forKey: key), as: UTF8.self) }
    func path(_ key: String) -> String { path(b(key)) }

    @Test func ordinaryKeysAreTheirPaths() {
        #expect(PathMapping.path(forKey: b("a/b/c.txt")) == b("/a/b/c.txt"))
        #expect(PathMapping.path(forKey: b("50%off")) == b("/50%off"))
        #expect(PathMapping.path(forKey: b("user:1")) == b("/user:1"))
    }

    @Test func awkwardKeysAreEscaped() {
        #expect(path("/lead") == "/%/lead")
        #expect(path("trail/") == "/trail/%")
        #expect(path("a//b") == "/a/%/b")
        #expect(path("a/./b/..") == "/a/%2E/b/%2E%2E")
        #expect(path([0x61, 0x00, 0x62]) == "/a%00b")
        #expect(path(".stats") == "/%2Estats")
        #expect(path("d/.stats") == "/d/.stats")
        #expect(path("%") == "/%25")
        #expect(path("%25") == "/%2525")
        #expect(path("%2525") == "/%252525")
        #expect(path("d/%=") == "/d/%25=")
        #expect(path("%00") == "/%2500")
        let long = [UInt8](repeating: 0x78, count: 600)
        let comps = PathMapping.components(forKey: long)
        #expect(comps.count == 3)
        #expect(comps.allSatisfy { $0.count <= 255 })
        #expect(roundTrip(long) == long)
    }

    /// Names that only look like escapes are the keys of their own bytes.
    @Test func literalNames() {
        for literal in ["%41", "pct%2F", "%25A", "%2541", "%2e", "%2E%41", "ab%+", "%%", "%4", "%=x", "%2Ex", "%2E."] {
            #expect(key("/" + literal) == b(literal), "\(literal)")
            #expect(path(literal) == "/" + literal, "\(literal)")
        }
        #expect(key("/%00") == [0])
        #expect(key("/%2500") == b("%00"))
        #expect(key("/%25") == b("%"))
        #expect(key("/%2525") == b("%25"))
        #expect(key("/%") == [])
        #expect(key("/a/%") == b("a/"))
        #expect(key("/d/%2E") == b("d/."))
        #expect(key("/d/%2E%2E") == b("d/.."))
        // Control names are escaped at the top level only.
        #expect(key("/%2Estats") == b(".stats"))
        #expect(key("/d/%2Estats") == b("d/%2Estats"))
        #expect(key("/d/.stats") == b("d/.stats"))
        #expect(resolve("/.stats") == .failure(.controlName))
        #expect(resolve("/.stats/x") == .failure(.controlName))
    }

    @Test func selfEntry() throws {
        let d = try resolve("/d/%=").get()
        #expect(d.isSelfEntry && d.key == b("d") && d.depth == 2)
        #expect(resolve("/d/%=/x") == .failure(.notDirectory))
        #expect(key("/d/%25=") == b("d/%="))
        // At the root `%=` is an ordinary name: the key `%=` (the root's key has no value).
        #expect(key("/%=") == b("%="))
        #expect(path("%=") == "/%=")
        #expect(key("/%25=") == b("%25="))
        #expect(path("%25=") == "/%25=")
        // The empty key is a directory at `/%`; its value is `/%/%=`.
        let e = try resolve("/%/%=").get()
        #expect(e.isSelfEntry && e.key == [])
        #expect(PathMapping.name(ofChild: [], in: try resolve("/%").get()) == PathMapping.selfName)
    }

    @Test func failures() throws {
        #expect(resolve("/x" + String(repeating: "y", count: 256)) == .failure(.nameTooLong))
        #expect(PathMapping.child(of: .root, name: [UInt8](repeating: 0x61, count: 256)) == .failure(.nameTooLong))
        #expect(PathMapping.child(of: .root, name: b(".")) == .failure(.notCanonical))
        #expect(PathMapping.child(of: .root, name: b("..")) == .failure(.notCanonical))
        #expect(PathMapping.child(of: .root, name: [0x61, 0x00]) == .failure(.notCanonical))
        #expect(PathMapping.child(of: .root, name: b("a/b")) == .failure(.notCanonical))
        #expect(PathMapping.child(of: .root, name: []) == .failure(.notCanonical))
        #expect(try resolve("/50%off").get().key == b("50%off"))
        #expect(try resolve("/%41").get().key == b("%41"))
    }

    @Test func pieces() throws {
        let x253 = String(repeating: "x", count: 253)
        // A first piece: a directory level, not a key.
        let p = try resolve("/" + x253 + "%+").get()
        #expect(p.isPieceDirectory && p.key == b(x253) && p.childPrefix == b(x253))
        #expect(key("/" + x253 + "%+/xyz") == b(x253 + "xyz"))
        // In a piece directory, only what continues the component canonically.
        #expect(resolve("/" + x253 + "%+/ab") == .failure(.notCanonical))  // 255 bytes: one name
        #expect(resolve("/" + x253 + "%+/%41") == .failure(.notCanonical))
        #expect(resolve("/" + x253 + "%+/%=") == .failure(.notCanonical))
        #expect(resolve("/" + x253 + "%+/%2Exyz") == .failure(.notCanonical))
        #expect(resolve("/" + x253 + "%+/%25zz") == .failure(.notCanonical))
        #expect(key("/" + x253 + "%+/%2525") == b(x253 + "%25"))  // long components are always escaped
        // The key of a first piece's bytes is escaped (and then long).
        #expect(path(x253 + "%+") == "/" + x253 + "%+/%25+")
        #expect(roundTrip(b(x253 + "%+")) == b(x253 + "%+"))
        // 252 bytes before `%+`: a piece only if the next one starts with `%`.
        let x252 = String(repeating: "x", count: 252)
        #expect(try resolve("/" + x252 + "%+").get().isPieceDirectory)
        #expect(path(x252 + "%+") == "/" + x252 + "%+/%25+")
        #expect(resolve("/" + x252 + "%+/abcd") == .failure(.notCanonical))
        #expect(key("/" + x252 + "%+/%00z") == b(x252) + [0, 0x7a])
        // 251 bytes: the escaped form fits one name.
        let x251 = String(repeating: "x", count: 251)
        #expect(path(x251 + "%+") == "/" + x251 + "%25+")
        #expect(try resolve("/" + x251 + "%+").get().isPieceDirectory)
        // Not the shape of a piece: literal.
        #expect(key("/abc%+") == b("abc%+"))
        #expect(key("/" + String(repeating: "x", count: 250) + "%+") == b(String(repeating: "x", count: 250) + "%+"))
        let odd = "%41" + String(repeating: "x", count: 250) + "%+"
        #expect(odd.utf8.count == 255)
        #expect(key("/" + odd) == b(odd))
        #expect(path(odd) == "/" + odd)
        // A key with a long component below a directory, and a key under it.
        let k = b("d/") + [UInt8](repeating: 0, count: 100) + b("/e")
        let comps = PathMapping.components(forKey: k)
        #expect(comps.count == 4 && comps[3] == b("e"))
        // Cut at 252 bytes: the 253rd starts an escape.
        #expect(comps[1] == b(String(repeating: "%00", count: 84) + "%+"))
        #expect(comps[2] == b(String(repeating: "%00", count: 16)))
        #expect(roundTrip(k) == k)
        // Piece directories are listed only with the keys that go through them.
        #expect(PathMapping.entry(ofChild: b(x253 + "xyz"), in: p) == .init(name: b("xyz"), namesKey: true))
        #expect(PathMapping.entry(ofChild: b(x253 + "xy/z"), in: p) == nil)  // `/x..xxy/z`
        #expect(PathMapping.entry(ofChild: b(x253 + "xyz/w"), in: p) == .init(name: b("xyz"), namesKey: false))
        #expect(PathMapping.entry(ofChild: b(x253), in: p) == nil)
    }

    /// Walks `key`'s path from the root with `child(of:name:)`, checking `entry(ofChild:in:)`
    /// names each step.
    func walk(_ key: [UInt8]) -> Bool {
        let comps = PathMapping.components(forKey: key)
        var r = Resolved.root
        for (i, c) in comps.enumerated() {
            guard PathMapping.entry(ofChild: key, in: r) == .init(name: c, namesKey: i == comps.count - 1),
                case .success(let next) = PathMapping.child(of: r, name: c)
            else { return false }
            r = next
        }
        return r.key == key && !r.isPieceDirectory && !r.isSelfEntry && r.depth == comps.count
    }

    /// Property: every byte string is reachable by exactly its canonical path.
    @Test func randomKeysRoundTrip() {
        var rng = SeededRandom(seed: 11)
        let alphabet: [UInt8] = [
            0x2f, 0x2f, 0x2e, 0x25, 0x25, 0x00, 0x41, 0x46, 0x32, 0x35, 0x2b, 0x3d, 0x61, 0xff, 0x20,
        ]
        for i in 0..<20_000 {
            let n = Int.random(in: 1...(i % 50 == 0 ? 700 : 12), using: &rng)
            let key: [UInt8] = (0..<n).map { _ in
                Bool.random(using: &rng) ? alphabet.randomElement(using: &rng)! : UInt8.random(in: 0...255, using: &rng)
            }
            let path = PathMapping.path(forKey: key)
            let comps = PathMapping.components(forKey: key)
            #expect(comps.allSatisfy { !$0.isEmpty && $0.count <= 255 && !$0.contains(0) && !$0.contains(0x2f) })
            #expect(comps.allSatisfy { $0 != [0x2e] && $0 != [0x2e, 0x2e] })
            #expect(roundTrip(key) == key, "key \(key) path \(String(decoding: path, as: UTF8.self))")
            #expect(walk(key), "key \(key)")
        }
    }

    let parents: [(path: String, r: Resolved)] = [
        ("", .root), ("/d", try! PathMapping.resolve(Array("/d".utf8)).get()),
        ("/%", try! PathMapping.resolve(Array("/%".utf8)).get()),
        ("/a/%2E", try! PathMapping.resolve(Array("/a/%2E".utf8)).get()),
    ]

    /// Checks that `name` in `parent` (a directory that is not a piece directory) is accepted,
    /// names one thing, and that a key it names is listed by that name; returns the key.
    @discardableResult
    func checkAccepted(_ name: [UInt8], in parent: (path: String, r: Resolved)) -> [UInt8]? {
        let shown = String(decoding: name, as: UTF8.self)
        let fullPath = b(parent.path) + [0x2f] + name
        let result = PathMapping.child(of: parent.r, name: name)
        #expect(PathMapping.resolve(fullPath) == result, "\(shown) in \(parent.path)")
        switch result {
        case .failure(.controlName):
            #expect(parent.r.isRoot && PathMapping.controlNames.contains(name))
        case .failure(let f):
            Issue.record("\(shown) in \(parent.path): \(f)")
        case .success(let r):
            #expect(r.depth == parent.r.depth + 1)
            if r.isSelfEntry {
                #expect(name == PathMapping.selfName && !parent.r.isRoot && r.key == parent.r.key)
            } else if r.isPieceDirectory {
                // Reserved: no key has this name, not even the key of its bytes.
                #expect(r.pieces == [name])
                #expect(PathMapping.split(PathMapping.encodeComponent(name[...], topLevel: parent.r.isRoot)) != [name])
                // A key through it (what `isPiece` tries): listed by it.
                let more: [UInt8] =
                    name.count == 255 ? [0x41, 0x41, 0] : name.count == 254 ? [0, 0x7a] : [0, 0x7a, 0x7a]
                #expect(PathMapping.entry(ofChild: r.key + more, in: parent.r) == .init(name: name, namesKey: false))
            } else {
                #expect(
                    PathMapping.entry(ofChild: r.key, in: parent.r) == .init(name: name, namesKey: true),
                    "\(shown) in \(parent.path)")
                #expect(PathMapping.path(forKey: r.key) == fullPath, "\(shown) in \(parent.path)")
                return r.key
            }
        }
        return nil
    }

    /// Property: every name a local filesystem accepts is accepted, names one key (or one of the
    /// reserved things), and that key is listed by that very name.
    @Test func randomNamesAreAccepted() {
        var rng = SeededRandom(seed: 12)
        let alphabet = Array("%%%%%0123456789ABCDEFabef=+.x".utf8) + [0xff, 0x01]
        for i in 0..<30_000 {
            let n = i % 50 == 0 ? Int.random(in: 240...255, using: &rng) : Int.random(in: 1...12, using: &rng)
            var name: [UInt8] = (0..<n).map { _ in
                if Bool.random(using: &rng) { return alphabet.randomElement(using: &rng)! }
                var c: UInt8
                repeat { c = UInt8.random(in: 1...255, using: &rng) } while c == 0x2f
                return c
            }
            if i % 5 == 0 && n >= 2 { name.replaceSubrange((n - 2)..., with: [0x25, 0x2b]) }
            if name == [0x2e] || name == [0x2e, 0x2e] { continue }
            for parent in parents { checkAccepted(name, in: parent) }
        }
    }

    /// All short names over an alphabet of the bytes that matter: accepted, and no two of them
    /// name the same key.
    @Test func shortNamesAreABijection() {
        let alphabet = Array("%25AE0=+.x".utf8)
        var names: [[UInt8]] = [[]]
        var all: [[UInt8]] = []
        for _ in 1...4 {
            names = names.flatMap { n in alphabet.map { n + [$0] } }
            all += names
        }
        for parent in parents {
            var seen: [[UInt8]: [UInt8]] = [:]
            for name in all where name != [0x2e] && name != [0x2e, 0x2e] {
                guard let k = checkAccepted(name, in: parent) else { continue }
                #expect(
                    seen[k] == nil,
                    "\(String(decoding: name, as: UTF8.self)) and \(seen[k].map { String(decoding: $0, as: UTF8.self) } ?? "")"
                )
                seen[k] = name
            }
        }
    }

    /// Property: in a piece directory a name is the next piece, the last piece of a key that
    /// is listed by it, or refused; real pieces (and near misses of them) are tried.
    @Test func randomNamesInPieceDirectories() throws {
        var rng = SeededRandom(seed: 13)
        let alphabet: [UInt8] = [0x25, 0x25, 0x00, 0x41, 0x46, 0x32, 0x35, 0x2b, 0x3d, 0x78]
        var tried = 0
        var accepted = 0
        for _ in 0..<3_000 {
            let n = Int.random(in: 200...700, using: &rng)
            let key: [UInt8] = (0..<n).map { _ in alphabet.randomElement(using: &rng)! }
            let comps = PathMapping.components(forKey: key)
            guard comps.count >= 2 else { continue }
            let dir = try PathMapping.child(of: .root, name: comps[0]).get()
            #expect(dir.isPieceDirectory)
            // Near misses of the first piece, at the root: accepted, as pieces or keys.
            var first = comps[0]
            first[Int.random(in: 0..<(first.count - 2), using: &rng)] = alphabet.randomElement(using: &rng)!
            if !first.contains(0) { checkAccepted(first, in: parents[0]) }
            var next = comps[1]
            for _ in 0..<4 {
                // A near miss of the real next piece: a byte changed, added or dropped.
                var name = next
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: name[Int.random(in: 0..<name.count, using: &rng)] = alphabet.randomElement(using: &rng)!
                case 1 where name.count < 255:
                    name.insert(alphabet.randomElement(using: &rng)!, at: Int.random(in: 0...name.count, using: &rng))
                default: if name.count > 1 { name.remove(at: Int.random(in: 0..<name.count, using: &rng)) }
                }
                next = name
                guard name.withUnsafeBytes({ !$0.contains(0) && !$0.contains(0x2f) }),
                    name != [0x2e], name != [0x2e, 0x2e]
                else { continue }
                tried += 1
                switch PathMapping.child(of: dir, name: name) {
                case .failure(let f): #expect(f == .notCanonical)
                case .success(let r):
                    accepted += 1
                    if r.isPieceDirectory {
                        #expect(r.pieces == [comps[0], name])
                    } else {
                        #expect(PathMapping.components(forKey: r.key) == [comps[0], name])
                        #expect(PathMapping.entry(ofChild: r.key, in: dir) == .init(name: name, namesKey: true))
                    }
                }
            }
        }
        #expect(tried > 5_000 && accepted > 100)
    }
}
