#if canImport(Glibc)
    import Glibc
#endif

/// Open read descriptors of blob files, shared by all readers (`pread` needs no position).
/// Bounded: past `capacity` an arbitrary entry is closed (its readers keep their own `File`
/// reference, so closing is deferred until they finish).
final class BlobReaderCache: Sendable {
    let directory: String
    let capacity: Int
    let layer: any FileLayer
    private let files = Locked<[UInt64: File]>([:])

    init(directory: String, capacity: Int, layer: any FileLayer) {
        self.layer = layer
        self.directory = directory
        self.capacity = capacity
    }

    func file(_ number: UInt64) throws -> File {
        if let f = files.withLock({ $0[number] }) { return f }
        let path = FileNames.blob(directory, number)
        let f: File
        do {
            f = try layer.openForReading(path)
        } catch let e as SliceError where e.errno == ENOENT {
            throw SliceError.corruption("blob file referenced by the store is missing", path: path)
        }
        return files.withLock { table in
            if let existing = table[number] { return existing }
            if table.count >= capacity, let victim = table.keys.first { table[victim] = nil }
            table[number] = f
            return f
        }
    }

    func evict(_ number: UInt64) { _ = files.withLock { $0.removeValue(forKey: number) } }

    var openCount: Int { files.withLock { $0.count } }
}
