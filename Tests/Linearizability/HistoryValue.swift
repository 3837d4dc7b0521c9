/// The bytes stored for a value id in recorded histories: the id, a dot, then padding whose
/// length follows from the id (0-299 bytes), so values of every size are exercised (some go to
/// blob files) while the history names them by their short id. A read that returns anything
/// else (a torn or foreign value) decodes to a name no write used, which the checkers reject.
///
/// `slice history-client` (Sources/slice/HistoryClient.swift) encodes the same way.
public enum HistoryValue {
    public static func padding(_ id: String) -> Int {
        id.utf8.reduce(0) { ($0 &* 31 &+ Int($1)) % 300 }
    }

    public static func encode(_ id: String) -> [UInt8] {
        Array(id.utf8) + [UInt8(ascii: ".")] + [UInt8](repeating: UInt8(ascii: "x"), count: padding(id))
    }

    public static func decode(_ bytes: [UInt8]) -> String {
        if let dot = bytes.firstIndex(of: UInt8(ascii: ".")) {
            let id = String(decoding: bytes[..<dot], as: UTF8.self)
            let rest = bytes[(dot + 1)...]
            if rest.count == padding(id) && rest.allSatisfy({ $0 == UInt8(ascii: "x") }) { return id }
        }
        // Printable and without spaces, so it also fits in a line of `slice history-client`.
        let shown = bytes.prefix(16).map { b -> Character in
            let c = Character(Unicode.Scalar(b))
            return b < 128 && (c.isLetter || c.isNumber || c == "-" || c == ".") ? c : "?"
        }
        return "!unexpected(\(bytes.count)b:\(String(shown)))"
    }
}
