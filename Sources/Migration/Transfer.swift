import Synchronization

/// Settings a running transfer obeys and may have changed under it (QEMU's
/// `migrate-set-parameters`): downtime limit, bandwidth, cancel.
public final class TransferControl: Sendable {
    public let downtimeLimitMs = Atomic<UInt64>(300)
    /// Bytes per second; 0 = unlimited.
    public let maxBandwidth = Atomic<UInt64>(0)
    public let cancelled = Atomic<Bool>(false)

    public init(downtimeLimitMs: UInt64 = 300, maxBandwidth: UInt64 = 0) {
        self.downtimeLimitMs.store(downtimeLimitMs, ordering: .relaxed)
        self.maxBandwidth.store(maxBandwidth, ordering: .relaxed)
    }

    public var isCancelled: Bool { cancelled.load(ordering: .relaxed) }
}

/// The figures of QEMU's `query-migrate`, with its names.
public struct TransferStats: Sendable, Equatable {
    /// setup, active, device, completed, failed, cancelling, cancelled
    public var status = "setup"
    public var totalTimeMs: UInt64 = 0
    public var setupTimeMs: UInt64 = 0
    public var downtimeMs: UInt64?
    public var expectedDowntimeMs: UInt64 = 0
    public var transferred: UInt64 = 0
    public var remaining: UInt64 = 0
    public var total: UInt64 = 0
    public var duplicate: UInt64 = 0
    public var normal: UInt64 = 0
    public var dirtyPagesRate: UInt64 = 0
    public var mbps: Double = 0
    public var dirtySyncCount: UInt64 = 0
    public var iterations: Int = 0
    /// Auto-converge: the share of each time slice the vCPU sleeps (query-migrate's
    /// `cpu-throttle-percentage`); the last value set, 0 when it never throttled.
    public var cpuThrottlePercentage = 0.0
    /// This transfer parked a running guest for the switch-over (and returned with it parked), as
    /// opposed to finding it paused already: only then is resuming it the caller's job.
    public var parkedGuest = false

    public init() {}

    /// Fraction done, for a progress bar: what went out over what went out plus what is left.
    public var progress: Double {
        let done = Double(transferred)
        let left = Double(remaining)
        return status == "completed" ? 1 : (done + left > 0 ? min(0.99, done / (done + left)) : 0)
    }
}

public struct MigrationCancelled: Error, CustomStringConvertible {
    public init() {}
    public var description: String { "cancelled" }
}
