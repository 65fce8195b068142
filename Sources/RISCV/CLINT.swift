// SiFive CLINT ("sifive,clint0", QEMU hw/intc/riscv_aclint.c): machine
// software interrupt (msip) and the machine timer (mtime, mtimecmp) of
// priv. spec §3.2.1. One hart.
import EmulatorCore
import VMState

public final class CLINT {
    // Register offsets
    static let msip: UInt64 = 0x0
    static let mtimecmp: UInt64 = 0x4000
    static let mtime: UInt64 = 0xbff8

    public struct State: Equatable, Sendable {
        public var msip: UInt32 = 0
        public var mtimecmp: UInt64 = .max
        /// mtime when the state was taken; restoring re-bases the clock.
        public var mtime: UInt64 = 0
        public init() {}
    }

    let clock: GuestClock
    var msip: UInt32 = 0
    var mtimecmp: UInt64 = .max

    init(clock: GuestClock) { self.clock = clock }

    public var state: State {
        get {
            var s = State()
            s.msip = msip
            s.mtimecmp = mtimecmp
            s.mtime = clock.mtime
            return s
        }
        set {
            msip = newValue.msip & 1
            mtimecmp = newValue.mtimecmp
            clock.mtime = newValue.mtime
        }
    }

    /// MSIP and MTIP as mip bits.
    var lines: UInt64 {
        (msip & 1 != 0 ? Hart.irqMSI : 0) | (clock.mtime >= mtimecmp ? Hart.irqMTI : 0)
    }

    func read(offset: UInt64, size: Int) -> UInt64 {
        switch (offset, size) {
        case (CLINT.msip, 4): return UInt64(msip)
        case (CLINT.mtimecmp, 8): return mtimecmp
        case (CLINT.mtimecmp, 4): return mtimecmp & 0xffff_ffff
        case (CLINT.mtimecmp + 4, 4): return mtimecmp >> 32
        case (CLINT.mtime, 8): return clock.mtime
        case (CLINT.mtime, 4): return clock.mtime & 0xffff_ffff
        case (CLINT.mtime + 4, 4): return clock.mtime >> 32
        default:
            GuestErrorLog.log("clint: bad read at 0x\(String(offset, radix: 16)) size \(size)")
            return 0
        }
    }

    func write(offset: UInt64, size: Int, value: UInt64) {
        switch (offset, size) {
        case (CLINT.msip, 4): msip = UInt32(value & 1)
        case (CLINT.mtimecmp, 8): mtimecmp = value
        case (CLINT.mtimecmp, 4): mtimecmp = (mtimecmp & ~0xffff_ffff) | (value & 0xffff_ffff)
        case (CLINT.mtimecmp + 4, 4): mtimecmp = (mtimecmp & 0xffff_ffff) | (value << 32)
        case (CLINT.mtime, 8): clock.mtime = value
        case (CLINT.mtime, 4): clock.mtime = (clock.mtime & ~0xffff_ffff) | (value & 0xffff_ffff)
        case (CLINT.mtime + 4, 4): clock.mtime = (clock.mtime & 0xffff_ffff) | (value << 32)
        default:
            GuestErrorLog.log("clint: bad write at 0x\(String(offset, radix: 16)) size \(size)")
        }
    }

    func reset() {
        msip = 0
        mtimecmp = .max
        clock.mtime = 0
    }
}

// MARK: - Migration (QEMU VMState)

extension CLINT: Device {
    public static let driver = "riscv.sifive.clint"
    public static let migration = DeviceMigration<State>.vmstate(
        VMStateDescription(
            name: "riscv_clint", versionID: 1, minimumVersionID: 1,
            fields: [.uint32(\.msip), .uint64(\.mtimecmp), .uint64(\.mtime)]))
}
