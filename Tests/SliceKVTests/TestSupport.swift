import Foundation
import Testing

@testable import SliceKV

/// A fresh directory under /tmp, removed when the object goes away.
final class TempDir: Sendable {
    let path: String

    init(_ label: String = "slice") {
        var template = Array("/tmp/\(label)-XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    }

    func file(_ name: String) -> String { "\(path)/\(name)" }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// Options that make flushes and compactions happen after a few KiB, so tests exercise every
/// level quickly.
func tinyOptions() -> Options {
    var o = Options()
    o.memtableSize = 16 << 10
    o.targetFileSize = 8 << 10
    o.level1MaxBytes = 32 << 10
    o.levelSizeRatio = 4
    o.blockSize = 512
    o.compaction.maxSSTablesPerJob = 4
    return o
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// Deterministic generator (SplitMix64) so failures reproduce from the printed seed.
typealias SeededRandom = SplitMix

func allEntries(_ db: SliceDB, _ range: KeyRange = .all, snapshot: Snapshot? = nil) throws -> [KeyValue] {
    let c = try db.scan(range, snapshot: snapshot)
    var out: [KeyValue] = []
    while let kv = try c.next() { out.append(kv) }
    return out
}

/// Flips one byte of a file in place.
func flipByte(_ path: String, at offset: Int) throws {
    let h = try FileHandle(forUpdating: URL(fileURLWithPath: path))
    defer { try? h.close() }
    try h.seek(toOffset: UInt64(offset))
    let b = try h.read(upToCount: 1)!
    try h.seek(toOffset: UInt64(offset))
    try h.write(contentsOf: Data([b[0] ^ 0x5a]))
}

func fileSize(_ path: String) -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: path)[.size]) as? NSNumber)?.intValue ?? -1
}

/// Bytes up to and including the last non-zero one.
func dataSize(_ path: String) -> Int {
    guard let d = FileManager.default.contents(atPath: path) else { return -1 }
    return (d.lastIndex { $0 != 0 } ?? -1) + 1
}

func files(in dir: String, suffix: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(suffix) }.sorted()
        .map { "\(dir)/\($0)" }
}

/// The `slice` executable built next to the test bundle.
var sliceExecutable: String {
    let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    var dir = URL(fileURLWithPath: me).deletingLastPathComponent()
    // The runner may live inside the .xctest bundle directory.
    while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("slice").path) && dir.path != "/" {
        dir = dir.deletingLastPathComponent()
    }
    return dir.appendingPathComponent("slice").path
}

/// Runs a command, returning exit status, stdout and stderr.
@discardableResult
func run(_ executable: String, _ args: [String], stdin: [UInt8]? = nil) throws -> (
    status: Int32, out: String, err: String, bytes: [UInt8]
) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = args
    let out = Pipe()
    let err = Pipe()
    let input = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = input
    try p.run()
    if let stdin { input.fileHandleForWriting.write(Data(stdin)) }
    try input.fileHandleForWriting.close()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self), [UInt8](o))
}
