/// The escaping `scan` prints and `import` reads: bytes of valid UTF-8 text pass through,
/// everything else is escaped, so any byte string survives a round trip through a text line.
///
/// `\\` backslash, `\t` TAB, `\n` LF, `\r` CR, `\xNN` any other control byte, DEL, or byte
/// that is not part of valid UTF-8.
enum Escaping {
    static func escape(_ bytes: [UInt8], into out: inout [UInt8]) {
        var i = 0
        let hex = Array("0123456789abcdef".utf8)
        while i < bytes.count {
            let b = bytes[i]
            switch b {
            case 0x5c: out.append(contentsOf: [0x5c, 0x5c])
            case 0x09: out.append(contentsOf: [0x5c, 0x74])
            case 0x0a: out.append(contentsOf: [0x5c, 0x6e])
            case 0x0d: out.append(contentsOf: [0x5c, 0x72])
            case 0x20..<0x7f: out.append(b)
            default:
                let n = utf8SequenceLength(bytes, i)
                if n > 0 {
                    out.append(contentsOf: bytes[i..<(i + n)])
                    i += n
                    continue
                }
                out.append(contentsOf: [0x5c, 0x78, hex[Int(b >> 4)], hex[Int(b & 15)]])
            }
            i += 1
        }
    }

    /// Length of a valid multi-byte UTF-8 sequence starting at `i`, or 0.
    private static func utf8SequenceLength(_ s: [UInt8], _ i: Int) -> Int {
        let b = s[i]
        let n: Int
        var lo: UInt8 = 0x80
        var hi: UInt8 = 0xbf
        switch b {
        case 0xc2...0xdf: n = 2
        case 0xe0:
            n = 3
            lo = 0xa0
        case 0xe1...0xec, 0xee...0xef: n = 3
        case 0xed:
            n = 3
            hi = 0x9f
        case 0xf0:
            n = 4
            lo = 0x90
        case 0xf1...0xf3: n = 4
        case 0xf4:
            n = 4
            hi = 0x8f
        default: return 0
        }
        guard i + n <= s.count else { return 0 }
        for k in 1..<n {
            let c = s[i + k]
            if k == 1 ? !(lo...hi).contains(c) : !(0x80...0xbf).contains(c) { return 0 }
        }
        return n
    }

    /// A key given on the command line: literal bytes, or unescaped with `--escaped`.
    static func key(_ s: String, escaped: Bool) throws -> [UInt8] {
        escaped ? try unescape(Array(s.utf8)[...], line: nil) : Array(s.utf8)
    }

    static func unescape(_ s: ArraySlice<UInt8>, line: Int?) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(s.count)
        var i = s.startIndex
        func bad(_ why: String) -> CLIError {
            CLIError((line.map { "line \($0): " } ?? "") + why)
        }
        while i < s.endIndex {
            let b = s[i]
            guard b == 0x5c else {
                out.append(b)
                i += 1
                continue
            }
            guard i + 1 < s.endIndex else { throw bad("a backslash at the end of a field") }
            switch s[i + 1] {
            case 0x5c: out.append(0x5c)
            case 0x74: out.append(0x09)
            case 0x6e: out.append(0x0a)
            case 0x72: out.append(0x0d)
            case 0x78:
                guard i + 3 < s.endIndex, let hi = hexValue(s[i + 2]), let lo = hexValue(s[i + 3]) else {
                    throw bad("\\x must be followed by two hex digits")
                }
                out.append(hi << 4 | lo)
                i += 2
            default: throw bad("unknown escape \\\(Character(Unicode.Scalar(s[i + 1])))")
            }
            i += 2
        }
        return out
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x61...0x66: return c - 0x61 + 10
        case 0x41...0x46: return c - 0x41 + 10
        default: return nil
        }
    }
}
