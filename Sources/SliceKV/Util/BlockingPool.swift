import Foundation

/// Dedicated threads for work that blocks on disk or on other threads (group commit, stalls,
/// flush, compaction, reads that miss memory), so `async` callers never block Swift's
/// cooperative pool, which has only as many threads as cores.
///
/// Threads start on demand up to `maxThreads` and then stay, waiting for work.
final class BlockingPool: @unchecked Sendable {
    static let shared = BlockingPool(maxThreads: 16)

    private let lock = ConditionLock()
    private var queue: [@Sendable () -> Void] = []
    private var head = 0
    private var threads = 0
    private var idle = 0
    private let maxThreads: Int

    init(maxThreads: Int) { self.maxThreads = maxThreads }

    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        // The result crosses threads in a locked box as well as through the continuation: the
        // continuation's own synchronisation is in the concurrency runtime, which
        // ThreadSanitizer does not see, so it reported values built on the I/O thread and read
        // by the task as races. One uncontended lock per call (nanoseconds against the hop).
        let box = Locked<Result<T, Error>?>(nil)
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            submit {
                let result = Result { try body() }
                box.withLock { $0 = result }
                c.resume()
            }
        }
        return try box.withLock { $0! }.get()
    }

    private func submit(_ job: @escaping @Sendable () -> Void) {
        let spawn: Bool = lock.withLock {
            queue.append(job)
            if idle > 0 {
                lock.broadcast()
                return false
            }
            guard threads < maxThreads else { return false }
            threads += 1
            return true
        }
        if spawn {
            let t = Thread { [self] in worker() }
            t.name = "slice-io"
            t.start()
        }
    }

    private func worker() {
        lock.lock()
        while true {
            if head < queue.count {
                let job = queue[head]
                head += 1
                if head > 1024 && head * 2 > queue.count {
                    queue.removeFirst(head)
                    head = 0
                }
                lock.unlock()
                job()
                lock.lock()
            } else {
                idle += 1
                lock.wait()
                idle -= 1
            }
        }
    }
}
