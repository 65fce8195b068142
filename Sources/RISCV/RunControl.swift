// Run control and the serial connection, the two things other threads may
// touch while the CPU thread runs. Requests are bits in one atomic word the
// CPU thread reads between slices (one relaxed load per slice). Nothing polls:
// a parked or idle CPU thread sleeps on its doorbell until a request, input or
// its timer deadline, and threads waiting for the CPU sleep on another.
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A condition variable: threads sleep in `wait` until the condition they test holds, and
/// whoever may have made it true rings. The condition is state outside (atomics); testing it
/// under the mutex, and ringing under it, is what makes a ring between test and sleep not
/// lost.
final class Doorbell: @unchecked Sendable {  // the pthread objects live at fixed addresses and are only used through pthread calls
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition); condition.deallocate()
        pthread_mutex_destroy(mutex); mutex.deallocate()
    }

    /// Wakes every waiter to test its condition again.
    func ring() {
        pthread_mutex_lock(mutex)
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }

    /// Sleeps until `ready()` holds or CLOCK_MONOTONIC passes `deadline` (nanoseconds);
    /// returns whether `ready()` held.
    func wait(deadline: UInt64? = nil, until ready: () -> Bool) -> Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !ready() {
            guard let deadline else {
                pthread_cond_wait(condition, mutex)
                continue
            }
            if Doorbell.now() >= deadline { return false }
            var until = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
            pthread_cond_timedwait(condition, mutex, &until)
        }
        return true
    }

    /// CLOCK_MONOTONIC in nanoseconds, the clock `wait`'s deadline is on.
    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// `milliseconds` from now on `wait`'s clock.
    static func deadline(afterMilliseconds milliseconds: Int) -> UInt64 {
        now() &+ UInt64(max(0, milliseconds)) &* 1_000_000
    }
}

public final class RunControl: Sendable {
    static let stopBit: UInt32 = 1
    static let pauseBit: UInt32 = 2
    static let dirtySyncBit: UInt32 = 4
    static let performBit: UInt32 = 8

    private let word = Atomic<UInt32>(0)
    private let isParked = Atomic<Bool>(false)
    /// The CPU thread is not inside `VirtMachine.run` (not yet entered, or returned).
    private let isOutside = Atomic<Bool>(true)
    private let dirtyResult = Mutex<[UInt64]?>(nil)
    private let work = Mutex<[@Sendable (VirtMachine) -> Void]>([])
    /// The CPU thread sleeps on this (parked, or idle in WFI): rung by every request and by
    /// console input.
    let cpuDoorbell = Doorbell()
    /// Threads waiting for the CPU sleep on this: rung when it parks, completes a dirty sync or
    /// leaves `run`.
    private let hostDoorbell = Doorbell()

    public init() {}

    var pending: UInt32 { word.load(ordering: .acquiring) }

    private func request(_ bit: UInt32) {
        word.bitwiseOr(bit, ordering: .releasing)
        cpuDoorbell.ring()
    }

    public func stop() { request(RunControl.stopBit) }
    public func pause() { request(RunControl.pauseBit) }
    public func resume() {
        word.bitwiseAnd(~RunControl.pauseBit, ordering: .releasing)
        isParked.store(false, ordering: .releasing)
        cpuDoorbell.ring()
    }

    /// Runs `body` on the CPU thread at the next instruction boundary between
    /// slices (also while paused): the way to snapshot, restore or inspect a
    /// running machine without locks in the interpreter.
    public func perform(_ body: @escaping @Sendable (VirtMachine) -> Void) {
        work.withLock { $0.append(body) }
        request(RunControl.performBit)
    }

    func takeWork() -> [@Sendable (VirtMachine) -> Void] {
        work.withLock { queue in
            let all = queue
            queue.removeAll()
            word.bitwiseAnd(~RunControl.performBit, ordering: .releasing)
            return all
        }
    }

    /// True once the CPU thread has stopped between slices after `pause()`.
    public var isPaused: Bool { isParked.load(ordering: .acquiring) }

    /// Blocks until the CPU thread has parked after `pause()` (true), or until it is not
    /// running the machine, the pause was lifted, or the timeout passed (false). Call
    /// `pause()` first; the CPU thread must already be started.
    @discardableResult
    public func waitUntilParked(timeoutMilliseconds: Int? = nil) -> Bool {
        let deadline = timeoutMilliseconds.map { Doorbell.deadline(afterMilliseconds: $0) }
        var parked = false
        _ = hostDoorbell.wait(deadline: deadline) {
            parked = isParked.load(ordering: .acquiring)
            return parked || word.load(ordering: .acquiring) & RunControl.pauseBit == 0
                || word.load(ordering: .acquiring) & RunControl.stopBit != 0
                || (hasRun.load(ordering: .acquiring) && isOutside.load(ordering: .acquiring))
        }
        return parked
    }
    /// Set once the CPU thread entered `run`, so `waitUntilParked` called before it did
    /// waits for it instead of returning at once.
    private let hasRun = Atomic<Bool>(false)

    func parked() {
        isParked.store(true, ordering: .releasing)
        hostDoorbell.ring()
    }
    /// The CPU thread leaves the park because the pause was lifted: a `resume()` that landed
    /// between its reading the pause bit and `parked()` must not leave `isPaused` true.
    func unparked() { isParked.store(false, ordering: .releasing) }

    /// Parked: sleeps until the pause is lifted or another request arrives.
    func waitWhilePaused() {
        let wake = RunControl.stopBit | RunControl.dirtySyncBit | RunControl.performBit
        _ = cpuDoorbell.wait {
            let request = word.load(ordering: .acquiring)
            return request & RunControl.pauseBit == 0 || request & wake != 0
        }
    }

    /// `VirtMachine.run` is entered / left on the CPU thread.
    func entered() {
        isOutside.store(false, ordering: .releasing)
        hasRun.store(true, ordering: .releasing)
    }
    func left() {
        isOutside.store(true, ordering: .releasing)
        isParked.store(false, ordering: .releasing)
        hostDoorbell.ring()
    }

    /// Asks the CPU thread for the dirty bitmap (fetch-and-clear, with the
    /// write TLB flushed at the same instruction boundary) and waits for it.
    /// Returns nil if the machine stops first.
    public func syncDirtyPages(timeoutMilliseconds: Int = 5000) -> [UInt64]? {
        dirtyResult.withLock { $0 = nil }
        request(RunControl.dirtySyncBit)
        var result: [UInt64]?
        _ = hostDoorbell.wait(deadline: Doorbell.deadline(afterMilliseconds: timeoutMilliseconds)) {
            result = dirtyResult.withLock { v -> [UInt64]? in
                let r = v; v = nil; return r
            }
            return result != nil || word.load(ordering: .acquiring) & RunControl.stopBit != 0
                || (hasRun.load(ordering: .acquiring) && isOutside.load(ordering: .acquiring))
        }
        return result
    }

    func completeDirtySync(_ bitmap: [UInt64]) {
        dirtyResult.withLock { $0 = bitmap }
        word.bitwiseAnd(~RunControl.dirtySyncBit, ordering: .releasing)
        hostDoorbell.ring()
    }
}

/// The UART's host side: bytes typed by the user wait in a queue until the
/// UART's FIFO has room; bytes the guest sends go to `output` on the CPU thread.
public final class SerialConsole: Sendable {
    /// Input the guest has not read yet, at most: a paused guest or one not reading its UART
    /// cannot make the host hold an unbounded queue.
    public static let inputCapacity = 64 << 10

    /// Bytes from `head` on are still to be read; the read part is dropped in large steps.
    private struct InputQueue {
        var bytes: [UInt8] = []
        var head = 0
        var count: Int { bytes.count - head }
    }
    private let input = Mutex(InputQueue())
    private let inputCount = Atomic<Int>(0)
    /// Counts accepted sends: an idle CPU wakes when it changes, not merely while input waits
    /// (a full receive FIFO must not keep it spinning).
    private let inputSequence = Atomic<Int>(0)
    /// The doorbell of the CPU thread this console feeds (set when `VirtMachine.run` starts).
    private let doorbell = Mutex<Doorbell?>(nil)
    public let output: @Sendable ([UInt8]) -> Void

    public init(output: @escaping @Sendable ([UInt8]) -> Void) {
        self.output = output
    }

    /// Queues input for the guest (any thread); false, queuing nothing, when it would not fit.
    @discardableResult
    public func send(_ bytes: [UInt8]) -> Bool {
        let accepted = input.withLock { queue -> Bool in
            guard queue.count + bytes.count <= Self.inputCapacity else { return false }
            queue.bytes += bytes
            return true
        }
        if accepted {
            inputCount.add(bytes.count, ordering: .releasing)
            inputSequence.add(1, ordering: .releasing)
            doorbell.withLock { $0 }?.ring()
        }
        return accepted
    }

    @discardableResult
    public func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    var hasInput: Bool { inputCount.load(ordering: .acquiring) > 0 }
    var inputSent: Int { inputSequence.load(ordering: .acquiring) }

    func attach(_ bell: Doorbell) { doorbell.withLock { $0 = bell } }

    func takeInput(max: Int) -> [UInt8] {
        let taken = input.withLock { queue -> [UInt8] in
            let n = min(max, queue.count)
            let taken = Array(queue.bytes[queue.head..<(queue.head + n)])
            queue.head += n
            // Drop what was read once it is most of the array: each byte moves at most once.
            if queue.head >= 4096 && queue.head * 2 >= queue.bytes.count {
                queue.bytes.removeFirst(queue.head)
                queue.head = 0
            }
            return taken
        }
        inputCount.subtract(taken.count, ordering: .releasing)
        return taken
    }
}
