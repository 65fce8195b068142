import Foundation
import RISCV

/// The rate a transfer moves bytes at, for query-migrate's `mbps` and the switch-over test.
/// Measured over windows of at least 100 ms (QEMU measures over its iteration periods): a short
/// pass of a few pages, swallowed by a socket buffer in microseconds, once claimed 20 Gbit/s
/// under a 40 MiB/s cap, and with it an expected downtime of nothing.
struct BandwidthMeter {
    static let window = Duration.milliseconds(100)
    private let start: ContinuousClock.Instant
    private let startBytes: UInt64
    private var windowStart: ContinuousClock.Instant
    private var windowBytes: UInt64
    private var measured: Double?

    init(bytesSent: UInt64, at now: ContinuousClock.Instant = .now) {
        start = now
        startBytes = bytesSent
        windowStart = now
        windowBytes = bytesSent
    }

    /// Bytes per second over the last full window; before the first one, the average since the
    /// start (over at least a millisecond).
    private(set) var bytesPerSecond: Double = 0

    mutating func observe(bytesSent: UInt64, at now: ContinuousClock.Instant = .now) {
        let elapsed = now - windowStart
        if elapsed >= Self.window {
            measured = Double(bytesSent - windowBytes) / LiveMachine.seconds(elapsed)
            windowStart = now
            windowBytes = bytesSent
        }
        bytesPerSecond = measured ?? Double(bytesSent - startBytes) / max(0.001, LiveMachine.seconds(now - start))
    }
}
