// Run control and the serial connection, the two things other threads may
// touch while the CPU thread runs. Requests are bits in one atomic word the
// CPU thread reads between slices (one relaxed load per slice).
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

public final class RunControl: Sendable {
    static let stopBit: UInt32 = 1
    static let pauseBit: UInt32 = 2
    static let dirtySyncBit: UInt32 = 4
    static let performBit: UInt32 = 8

    private let word = Atomic<UInt32>(0)
    private let isParked = Atomic<Bool>(false)
    private let dirtyResult = Mutex<[UInt64]?>(nil)
    private let work = Mutex<[@Sendable (VirtMachine) -> Void]>([])

    public init() {}

    var pending: UInt32 { word.load(ordering: .acquiring) }

    public func stop() { word.bitwiseOr(RunControl.stopBit, ordering: .releasing) }
    public func pause() { word.bitwiseOr(RunControl.pauseBit, ordering: .releasing) }
    public func resume() {
        word.bitwiseAnd(~RunControl.pauseBit, ordering: .releasing)
        isParked.store(false, ordering: .releasing)
    }

    /// Runs `body` on the CPU thread at the next instruction boundary between
    /// slices (also while paused): the way to snapshot, restore or inspect a
    /// running machine without locks in the interpreter.
    public func perform(_ body: @escaping @Sendable (VirtMachine) -> Void) {
        work.withLock { $0.append(body) }
        word.bitwiseOr(RunControl.performBit, ordering: .releasing)
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

    func parked() { isParked.store(true, ordering: .releasing) }
    /// The CPU thread leaves the park because the pause was lifted: a `resume()` that landed
    /// between its reading the pause bit and `parked()` must not leave `isPaused` true.
    func unparked() { isParked.store(false, ordering: .releasing) }
    func waitWhilePaused() { usleep(200) }

    /// Asks the CPU thread for the dirty bitmap (fetch-and-clear, with the
    /// write TLB flushed at the same instruction boundary) and waits for it.
    /// Returns nil if the machine stops first.
    public func syncDirtyPages(timeoutMilliseconds: Int = 5000) -> [UInt64]? {
        dirtyResult.withLock { $0 = nil }
        word.bitwiseOr(RunControl.dirtySyncBit, ordering: .releasing)
        for _ in 0..<(timeoutMilliseconds * 10) {
            if let r = dirtyResult.withLock({ v -> [UInt64]? in let r = v; v = nil; return r }) { return r }
            if word.load(ordering: .acquiring) & RunControl.stopBit != 0 { return nil }
            usleep(100)
        }
        return nil
    }

    func completeDirtySync(_ bitmap: [UInt64]) {
        dirtyResult.withLock { $0 = bitmap }
        word.bitwiseAnd(~RunControl.dirtySyncBit, ordering: .releasing)
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
        if accepted { inputCount.add(bytes.count, ordering: .releasing) }
        return accepted
    }

    @discardableResult
    public func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    var hasInput: Bool { inputCount.load(ordering: .acquiring) > 0 }

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
