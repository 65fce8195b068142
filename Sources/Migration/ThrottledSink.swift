import Foundation
import RISCV
import Synchronization
import VMState

/// Counts bytes on their way to a sink, holds them to the transfer's bandwidth limit (which may
/// change mid-flight; 0 = unlimited), and is where a cancel takes effect between writes.
public final class ThrottledSink: ByteSink, @unchecked Sendable { // written by one transfer thread; limits and cancel are atomics in TransferControl
    private let inner: ByteSink
    private let transfer: TransferControl
    private let sent = Atomic<UInt64>(0)
    private var windowStart = ContinuousClock.now
    private var windowBytes: UInt64 = 0

    public init(_ inner: ByteSink, transfer: TransferControl) {
        self.inner = inner
        self.transfer = transfer
    }

    public var bytesSent: UInt64 { sent.load(ordering: .relaxed) }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        if transfer.isCancelled { throw MigrationCancelled() }
        let limit = transfer.maxBandwidth.load(ordering: .relaxed)
        if limit > 0 {
            windowBytes += UInt64(bytes.count)
            let elapsed = LiveMachine.seconds(ContinuousClock.now - windowStart)
            let due = Double(windowBytes) / Double(limit)
            if due > elapsed { Thread.sleep(forTimeInterval: min(1, due - elapsed)) }
            if elapsed > 1 {
                windowStart = ContinuousClock.now
                windowBytes = 0
            }
        }
        try inner.write(bytes)
        sent.add(UInt64(bytes.count), ordering: .relaxed)
    }
}

public struct MigrationCancelled: Error, CustomStringConvertible {
    public init() {}
    public var description: String { "cancelled" }
}
