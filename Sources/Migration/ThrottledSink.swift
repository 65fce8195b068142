import Foundation
import RISCV
import Synchronization
import VMState

/// Counts bytes on their way to a sink, holds them to the transfer's bandwidth limit (which may
/// change mid-flight; 0 = unlimited), and is where a cancel takes effect between writes.
// @unchecked Sendable: written by one transfer thread; limits and cancel are atomics in TransferControl
public final class ThrottledSink: ByteSink, @unchecked Sendable {
    private let inner: ByteSink
    private let transfer: TransferControl
    private let clock: TransferClock
    private let sent = Atomic<UInt64>(0)
    /// When the bytes admitted so far are paid for at the limit: a write waits until then.
    private var paidUntil: Duration

    /// A wait for bandwidth is cut into steps this long, so a cancel is seen within one.
    static let cancelCheck = Duration.milliseconds(100)

    public init(_ inner: ByteSink, transfer: TransferControl, clock: TransferClock = SystemTransferClock()) {
        self.inner = inner
        self.transfer = transfer
        self.clock = clock
        paidUntil = clock.now()
    }

    public var bytesSent: UInt64 { sent.load(ordering: .relaxed) }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        try admit(bytes.count)
        try inner.write(bytes)
        sent.add(UInt64(bytes.count), ordering: .relaxed)
    }

    public func write(gathering pieces: [UnsafeRawBufferPointer]) throws {
        let count = pieces.reduce(0) { $0 + $1.count }
        try admit(count)
        try inner.write(gathering: pieces)
        sent.add(UInt64(count), ordering: .relaxed)
    }

    /// Charges `count` bytes at the current limit (a limit changed mid-flight prices the next
    /// bytes, not those already sent) and waits until they are paid for. Time the sink sat idle
    /// (a setup, a dirty-log sync) is no credit: no stretch of the transfer goes over the limit.
    private func admit(_ count: Int) throws {
        if transfer.isCancelled { throw MigrationCancelled() }
        let limit = transfer.maxBandwidth.load(ordering: .relaxed)
        let now = clock.now()
        guard limit > 0 else {
            paidUntil = now
            return
        }
        paidUntil = max(paidUntil, now) + .seconds(Double(count) / Double(limit))
        var wait = paidUntil - now
        while wait > .zero {
            let step = min(wait, Self.cancelCheck)
            clock.sleep(for: step)
            wait -= step
            if transfer.isCancelled { throw MigrationCancelled() }
        }
    }
}
