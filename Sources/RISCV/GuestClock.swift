// The time base behind mtime (10 MHz, the DT's timebase-frequency).
// Real-time mode follows the host's monotonic clock; icount mode derives
// time from retired instructions (like QEMU -icount), so a run and a run
// restored from a snapshot at any instruction see identical time.
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

public enum ClockMode: Sendable, Equatable {
    case realtime
    /// One mtime tick (100 ns) per 2^shift retired instructions. (QEMU's
    /// -icount shift counts 2^shift ns per instruction; shift 4 here is
    /// 6.25 ns per instruction, close to this interpreter's real speed.)
    case icount(shift: Int)

    public static let defaultICount = ClockMode.icount(shift: 4)
}

final class GuestClock {
    static let frequency: UInt64 = 10_000_000

    let mode: ClockMode
    /// mtime = raw + offset (the guest can write mtime; restore sets it).
    var offset: UInt64 = 0
    /// The hart's `State.retired`, kept exact whenever a device runs.
    private(set) var retired: UnsafePointer<UInt64>
    private let ownCounter: UnsafeMutablePointer<UInt64>
    /// While paused (real-time mode), time stands still like QEMU's vm clock.
    private var frozenAt: UInt64?

    init(mode: ClockMode) {
        self.mode = mode
        ownCounter = .allocate(capacity: 1)
        ownCounter.initialize(to: 0)
        retired = UnsafePointer(ownCounter)
        offset = 0 &- raw()
    }

    deinit { ownCounter.deallocate() }

    /// Switches the icount source to the hart's counter, keeping mtime.
    func attach(retired source: UnsafePointer<UInt64>) {
        let now = mtime
        retired = source
        mtime = now
    }

    static func hostTicks() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return (UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)) / (1_000_000_000 / frequency)
    }

    @inline(__always)
    func raw() -> UInt64 {
        switch mode {
        case .realtime: return GuestClock.hostTicks()
        case .icount(let shift): return retired.pointee >> UInt64(shift)
        }
    }

    var mtime: UInt64 {
        get { frozenAt ?? raw() &+ offset }
        set {
            if frozenAt != nil { frozenAt = newValue }
            offset = newValue &- raw()
        }
    }

    /// Instructions until mtime reaches `deadline` (icount mode), or nil when
    /// time does not follow instructions.
    func instructionsUntil(_ deadline: UInt64) -> UInt64? {
        guard case .icount(let shift) = mode else { return nil }
        let now = mtime
        if deadline <= now { return 0 }
        let ticks = deadline - now
        if ticks >= (UInt64.max >> UInt64(shift + 1)) { return .max }
        // Instructions to the next tick boundary, then whole ticks.
        let mask = (UInt64(1) << UInt64(shift)) - 1
        let toNextTick = (mask - (retired.pointee & mask)) + 1
        return toNextTick + (ticks - 1) << UInt64(shift)
    }

    /// WFI with nothing else to wake the hart: jump time to `deadline`
    /// (QEMU icount "sleep=off" warps the clock the same way).
    func warp(to deadline: UInt64) {
        if deadline > mtime { mtime = deadline }
    }

    func freeze() { if frozenAt == nil { frozenAt = mtime } }
    func thaw() {
        if let t = frozenAt {
            frozenAt = nil
            offset = t &- raw()
        }
    }
}
