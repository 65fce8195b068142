import Foundation

/// The time a transfer measures bandwidth, downtime and throttle periods by, and sleeps on to
/// hold a bandwidth limit. The system's monotonic clock, or a scripted one in tests.
public protocol TransferClock: Sendable {
    /// Time since an arbitrary origin, never going back.
    func now() -> Duration
    func sleep(for duration: Duration)
}

public struct SystemTransferClock: TransferClock {
    private let origin = ContinuousClock.now
    public init() {}
    public func now() -> Duration { ContinuousClock.now - origin }
    public func sleep(for duration: Duration) { Thread.sleep(forTimeInterval: duration.seconds) }
}

extension Duration {
    /// As a floating-point number of seconds, for rates.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    var milliseconds: UInt64 { UInt64(max(0, seconds * 1000)) }
}
