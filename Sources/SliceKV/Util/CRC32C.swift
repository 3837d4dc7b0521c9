import CSliceKV

/// CRC32C (Castagnoli), hardware-accelerated where the CPU has SSE4.2.
///
/// Stored checksums are *masked* as LevelDB does: a CRC of data that itself holds CRCs is
/// otherwise prone to accidental matches.
package enum CRC32C {
    static var usesHardware: Bool { slice_crc32c_hardware() != 0 }

    @inline(__always)
    package static func checksum(_ buffer: UnsafeRawBufferPointer, extending crc: UInt32 = 0) -> UInt32 {
        slice_crc32c_extend(crc, buffer.baseAddress, buffer.count)
    }

    @inline(__always)
    static func checksum(_ bytes: [UInt8], extending crc: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, extending: crc) }
    }

    @inline(__always)
    static func checksum(_ bytes: ArraySlice<UInt8>, extending crc: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, extending: crc) }
    }

    private static let maskDelta: UInt32 = 0xa282_ead8

    @inline(__always)
    static func mask(_ crc: UInt32) -> UInt32 {
        ((crc >> 15) | (crc << 17)) &+ maskDelta
    }

    @inline(__always)
    static func unmask(_ masked: UInt32) -> UInt32 {
        let rot = masked &- maskDelta
        return (rot >> 17) | (rot << 15)
    }
}
