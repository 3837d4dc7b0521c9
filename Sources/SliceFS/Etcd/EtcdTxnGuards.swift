import Foundation
import SliceKV

/// Makes retrying a transaction safe. A call whose answer is lost (a member killed, a timeout,
/// "leader changed") may still have been applied, and `EtcdClient` sends it again to another
/// member; applied twice, a transaction could undo what another mount did in between (put a
/// name back that was removed).
///
/// So each transaction of a mount takes one of its `count` guard keys (`PREFIX 0x00 0x16
/// "txn/" mount-id "/" slot`, fresh random ids at every mount) and compares the key's version
/// with the one it last left there, and puts the call's sequence number under it: a second
/// copy finds the version moved and changes nothing. When a call answers "compare failed",
/// the key's value says whether an earlier copy was applied (it holds this call's number) or
/// not. `count` slots let that many transactions of the mount be in flight at once.
final class EtcdTxnGuards: Sendable {
    struct Slot: Sendable {
        let key: [UInt8]
        /// The key's version after this mount's last transaction with it (0: none yet).
        var version: Int64
    }

    private let slots: Locked<[Slot]>
    private let available: DispatchSemaphore
    let keys: [[UInt8]]

    init(layout: EtcdLayout, count: Int = 16) {
        let id = String(UInt64.random(in: 1...UInt64.max), radix: 16)
        keys = (0..<count).map { layout.etcdKey(FSKeyspace.meta, Array("txn/\(id)/\($0)".utf8)) }
        slots = Locked(keys.map { Slot(key: $0, version: 0) })
        available = DispatchSemaphore(value: count)
    }

    /// Runs `body` with a slot of its own (waiting for one), and keeps what it left in it.
    func withSlot<T>(_ body: (inout Slot) throws -> T) rethrows -> T {
        available.wait()
        var slot = slots.withLock { $0.removeLast() }
        defer {
            slots.withLock { $0.append(slot) }
            available.signal()
        }
        return try body(&slot)
    }
}
