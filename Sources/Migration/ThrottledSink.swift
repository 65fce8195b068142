import Foundation
import Synchronization
import VMState

/// Counts bytes on their way to a sink and holds them to a bandwidth limit that can change
/// mid-flight (QEMU's `max-bandwidth`; 0 = unlimited). Also the source's cancel point.
public final class ThrottledSink: ByteSink, @unchecked Sendable { // written by the migration thread only; limits and cancel are atomics
    private let inner: ByteSink
    public let bytesPerSecond = Atomic<UInt64>(0)
    public let cancelled = Atomic<Bool>(false)
    private let sent = Atomic<UInt64>(0)
    private var windowStart = ContinuousClock.now
    private var windowBytes: UInt64 = 0

    public init(_ inner: ByteSink, bytesPerSecond: UInt64 = 0) {
        self.inner = inner
        self.bytesPerSecond.store(bytesPerSecond, ordering: .relaxed)
    }

    public var bytesSent: UInt64 { sent.load(ordering: .relaxed) }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        if cancelled.load(ordering: .relaxed) { throw MigrationCancelled() }
        let limit = bytesPerSecond.load(ordering: .relaxed)
        if limit > 0 {
            windowBytes += UInt64(bytes.count)
            let elapsed = ContinuousClock.now - windowStart
            let due = Double(windowBytes) / Double(limit)
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            if due > seconds { Thread.sleep(forTimeInterval: min(1, due - seconds)) }
            if seconds > 1 {
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
    public var description: String { "migration cancelled" }
}
