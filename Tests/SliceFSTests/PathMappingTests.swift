import Testing

@testable import SliceFS

@Suite struct PathMappingTests {
    func roundTrip(_ key: [UInt8]) -> [UInt8]? {
        guard case .success(let r) = PathMapping.resolve(PathMapping.path(forKey: key)) else { return nil }
        return r.key
    }

    @Test func ordinaryKeysAreTheirPaths() {
        #expect(PathMapping.path(forKey: Array("a/b/c.txt".utf8)) == Array("/a/b/c.txt".utf8))
        #expect(PathMapping.path(forKey: Array("50%off".utf8)) == Array("/50%off".utf8))
        #expect(PathMapping.path(forKey: Array("user:1".utf8)) == Array("/user:1".utf8))
    }

    @Test func awkwardKeysAreEscaped() {
        func p(_ k: [UInt8]) -> String { String(decoding: PathMapping.path(forKey: k), as: UTF8.self) }
        #expect(p(Array("/lead".utf8)) == "/%/lead")
        #expect(p(Array("trail/".utf8)) == "/trail/%")
        #expect(p(Array("a//b".utf8)) == "/a/%/b")
        #expect(p(Array("a/./b/..".utf8)) == "/a/%2E/b/%2E%2E")
        #expect(p([0x61, 0x00, 0x62]) == "/a%00b")
        #expect(p(Array("%41".utf8)) == "/%2541")
        #expect(p(Array(".stats".utf8)) == "/%2Estats")
        #expect(p(Array("d/.stats".utf8)) == "/d/.stats")
        let long = [UInt8](repeating: 0x78, count: 600)
        let comps = PathMapping.components(forKey: long)
        #expect(comps.count == 3)
        #expect(comps.allSatisfy { $0.count <= 255 })
        #expect(roundTrip(long) == long)
    }

    @Test func nonCanonicalPathsAreRefused() throws {
        #expect(PathMapping.resolve(Array("/%41".utf8)) == .failure(.notCanonical))
        #expect(PathMapping.resolve(Array("/x".utf8) + [UInt8](repeating: 0x79, count: 256)) == .failure(.nameTooLong))
        #expect(try PathMapping.resolve(Array("/50%off".utf8)).get().key == Array("50%off".utf8))
    }

    /// Property: every byte string is reachable by exactly its canonical path.
    @Test func randomKeysRoundTrip() {
        var rng = SeededRandom(seed: 11)
        let alphabet: [UInt8] = [0x2f, 0x2f, 0x2e, 0x25, 0x00, 0x41, 0x46, 0x2b, 0x3d, 0x61, 0x32, 0xff, 0x20]
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
        }
    }
}
