import Foundation
@testable import Migration
import Testing

/// The transfer rate behind query-migrate's `mbps` and the switch-over test: measured over windows
/// of 100 ms, never over the microseconds a small write takes to land in a socket buffer.
@Suite("Bandwidth meter")
struct BandwidthMeterTests {
    @Test func aWriteThatLandsAtOnceDoesNotClaimGigabits() {
        let start = ContinuousClock.now
        var meter = BandwidthMeter(bytesSent: 0, at: start)
        // 40 MiB/s for a second, in 100 ms windows.
        for tick in 1...10 { meter.observe(bytesSent: UInt64(tick) * 4 << 20, at: start + .milliseconds(100 * tick)) }
        #expect(abs(meter.bytesPerSecond - 40 * 1_048_576) < 1_048_576)
        // Then 12 KiB in 10 µs (a short final pass into a socket buffer): the rate stays the window's.
        meter.observe(bytesSent: 40 << 20 + 12 << 10, at: start + .milliseconds(1000) + .microseconds(10))
        #expect(meter.bytesPerSecond < 41 * 1_048_576)
    }

    @Test func beforeTheFirstWindowItIsTheAverageOverAtLeastAMillisecond() {
        let start = ContinuousClock.now
        var meter = BandwidthMeter(bytesSent: 1000, at: start)
        meter.observe(bytesSent: 1000 + 1 << 20, at: start + .microseconds(5))
        #expect(meter.bytesPerSecond <= Double(1 << 20) / 0.001)
        meter.observe(bytesSent: 1000 + 2 << 20, at: start + .milliseconds(50))
        #expect(abs(meter.bytesPerSecond - Double(2 << 20) / 0.05) < 1)
    }
}
