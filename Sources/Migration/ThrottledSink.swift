import Foundation
import RISCV
import Synchronization
import VMState

/// Counts bytes on their way to a sink, holds them to the transfer's bandwidth limit (which may
/// change mid-flight; 0 = unlimited), and is where a cancel takes effect between writes.
public final class ThrottledSink: ByteSink, @unchecked Sendable {  // written by one transfer thread; limits and cancel are atomics in TransferControl
    private let inner: ByteSink
    private let transfer: TransferControl
    private let clock: TransferClock
    private let sent = Atomic<UInt64>(0)
    private var windowStart: Duration
    private var windowBytes: UInt64 = 0

    /// A wait for bandwidth is cut into steps this long, so a cancel is seen within one.
    static let cancelCheck = Duration.milliseconds(100)

    public init(_ inner: ByteSink, transfer: TransferControl, clock: TransferClock = SystemTransferClock()) {
        self.inner = inner
        self.transfer = transfer
        self.clock = clock
        windowStart = clock.now()
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

    /// Waits until `count` more bytes keep the current one-second window within the limit.
    private func admit(_ count: Int) throws {
        if transfer.isCancelled { throw MigrationCancelled() }
        let limit = transfer.maxBandwidth.load(ordering: .relaxed)
        guard limit > 0 else { return }
        windowBytes += UInt64(count)
        let elapsed = clock.now() - windowStart
        var wait = Duration.seconds(Double(windowBytes) / Double(limit)) - elapsed
        while wait > .zero {
            let step = min(wait, Self.cancelCheck)
            clock.sleep(for: step)
            wait -= step
            if transfer.isCancelled { throw MigrationCancelled() }
        }
        if elapsed > .seconds(1) {
            windowStart = clock.now()
            windowBytes = 0
        }
    }
}
