// The hart's architectural state as one value (snapshot = copy it out,
// restore = copy it in), plus the CSR numbers and bit positions used by the
// rest of the hart. Names follow the RISC-V privileged spec (v1.12).
import EmulatorCore
import VMState

/// Privilege levels (priv. spec §1.2, table 1.1).
public enum PrivilegeMode: UInt8, Sendable {
    case user = 0
    case supervisor = 1
    case machine = 3
}

/// x0...x31 as a fixed-size value: the interpreter addresses it through a
/// pointer, a state description through `values`.
public struct GPRFile: Equatable, Sendable {
    var r:
        (
            UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
            UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
            UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
            UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64
        ) = (
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
        )

    public init() {}

    public subscript(i: Int) -> UInt64 {
        get {
            precondition(i >= 0 && i < 32)
            return withUnsafeBytes(of: r) { $0.load(fromByteOffset: i * 8, as: UInt64.self) }
        }
        set {
            precondition(i >= 0 && i < 32)
            if i == 0 { return }
            withUnsafeMutableBytes(of: &r) { $0.storeBytes(of: newValue, toByteOffset: i * 8, as: UInt64.self) }
        }
    }

    /// The 32 registers as an array (for state descriptions and tests).
    public var values: [UInt64] {
        get { (0..<32).map { self[$0] } }
        set { for i in 1..<min(32, newValue.count) { self[i] = newValue[i] } }
    }

    public static func == (a: GPRFile, b: GPRFile) -> Bool {
        withUnsafeBytes(of: a.r) { pa in withUnsafeBytes(of: b.r) { pb in pa.elementsEqual(pb) } }
    }
}

extension Hart {
    /// Every guest-visible bit of the hart. Counters are derived from
    /// `retired` so that the icount clock and minstret never disagree.
    public struct State: Equatable, Sendable {
        public var x = GPRFile()
        public var pc: UInt64 = 0
        public var priv: PrivilegeMode = .machine
        /// Instructions retired since reset; drives mcycle/minstret and, in
        /// icount mode, mtime. Never written by the guest.
        public var retired: UInt64 = 0
        /// minstret/mcycle = retired + delta (the guest may write them).
        public var minstretDelta: UInt64 = 0
        public var mcycleDelta: UInt64 = 0

        // Machine-level CSRs (priv. spec §3.1)
        public var mstatus: UInt64 = Hart.mstatusFixed
        public var medeleg: UInt64 = 0
        public var mideleg: UInt64 = 0
        public var mie: UInt64 = 0
        /// The software-writable bits of mip (SSIP, STIP, SEIP); the lines
        /// driven by CLINT/PLIC are ORed in from `Hart.mipLines`.
        public var mip: UInt64 = 0
        public var mtvec: UInt64 = 0
        public var mscratch: UInt64 = 0
        public var mepc: UInt64 = 0
        public var mcause: UInt64 = 0
        public var mtval: UInt64 = 0
        public var mcounteren: UInt64 = 0

        // Supervisor-level CSRs (priv. spec §4.1)
        public var stvec: UInt64 = 0
        public var sscratch: UInt64 = 0
        public var sepc: UInt64 = 0
        public var scause: UInt64 = 0
        public var stval: UInt64 = 0
        public var scounteren: UInt64 = 0
        public var satp: UInt64 = 0

        /// LR/SC reservation (unprivileged spec §8.2): the reserved address,
        /// `Hart.noReservation` when none (QEMU's `load_res` uses -1 too).
        public var reservation: UInt64 = Hart.noReservation
        /// Stalled in WFI until an interrupt is pending (priv. spec §3.3.3).
        public var waitingForInterrupt = false

        public init() {}
    }
}

/// CSR numbers (priv. spec §2.2, tables 2.2-2.5).
enum CSR {
    static let sstatus = 0x100, sie = 0x104, stvec = 0x105, scounteren = 0x106
    static let sscratch = 0x140, sepc = 0x141, scause = 0x142, stval = 0x143, sip = 0x144
    static let satp = 0x180
    static let mstatus = 0x300, misa = 0x301, medeleg = 0x302, mideleg = 0x303, mie = 0x304
    static let mtvec = 0x305, mcounteren = 0x306
    static let mscratch = 0x340, mepc = 0x341, mcause = 0x342, mtval = 0x343, mip = 0x344
    static let mhpmevent3 = 0x323, mhpmevent31 = 0x33f
    static let mcycle = 0xb00, minstret = 0xb02, mhpmcounter3 = 0xb03, mhpmcounter31 = 0xb1f
    static let cycle = 0xc00, time = 0xc01, instret = 0xc02, hpmcounter3 = 0xc03, hpmcounter31 = 0xc1f
    static let mvendorid = 0xf11, marchid = 0xf12, mimpid = 0xf13, mhartid = 0xf14
}

extension Hart {
    // mstatus fields (priv. spec §3.1.6)
    static let mstatusSIE: UInt64 = 1 << 1
    static let mstatusMIE: UInt64 = 1 << 3
    static let mstatusSPIE: UInt64 = 1 << 5
    static let mstatusMPIE: UInt64 = 1 << 7
    static let mstatusSPP: UInt64 = 1 << 8
    static let mstatusMPPShift: UInt64 = 11
    static let mstatusMPP: UInt64 = 3 << 11
    static let mstatusMPRV: UInt64 = 1 << 17
    static let mstatusSUM: UInt64 = 1 << 18
    static let mstatusMXR: UInt64 = 1 << 19
    static let mstatusTVM: UInt64 = 1 << 20
    static let mstatusTW: UInt64 = 1 << 21
    static let mstatusTSR: UInt64 = 1 << 22
    /// UXL = SXL = 2 (64-bit), read-only (§3.1.6.2).
    static let mstatusFixed: UInt64 = (2 << 32) | (2 << 34)
    static let mstatusWritable: UInt64 =
        mstatusSIE | mstatusMIE | mstatusSPIE | mstatusMPIE | mstatusSPP
        | mstatusMPP | mstatusMPRV | mstatusSUM | mstatusMXR | mstatusTVM | mstatusTW | mstatusTSR
    /// sstatus is a restricted view of mstatus (§4.1.1).
    static let sstatusReadable: UInt64 = mstatusSIE | mstatusSPIE | mstatusSPP | mstatusSUM | mstatusMXR | (3 << 32)
    static let sstatusWritable: UInt64 = mstatusSIE | mstatusSPIE | mstatusSPP | mstatusSUM | mstatusMXR

    // Interrupt bits of mip/mie (§3.1.9)
    static let irqSSI: UInt64 = 1 << 1
    static let irqMSI: UInt64 = 1 << 3
    static let irqSTI: UInt64 = 1 << 5
    static let irqMTI: UInt64 = 1 << 7
    static let irqSEI: UInt64 = 1 << 9
    static let irqMEI: UInt64 = 1 << 11
    static let sInterrupts: UInt64 = irqSSI | irqSTI | irqSEI
    static let allInterrupts: UInt64 = sInterrupts | irqMSI | irqMTI | irqMEI

    public static let noReservation: UInt64 = .max

    /// misa: MXL = 2 (RV64), extensions A, C, I, M, S, U (§3.1.1).
    public static let misa: UInt64 = (2 << 62) | (1 << 0) | (1 << 2) | (1 << 8) | (1 << 12) | (1 << 18) | (1 << 20)
    /// Exceptions that may be delegated to S-mode: all but ecall from M (§3.1.8).
    static let medelegWritable: UInt64 = 0xb3ff
}

/// Synchronous exception causes (priv. spec §3.1.15, table 3.6).
enum Exception: UInt64 {
    case instructionMisaligned = 0
    case instructionAccessFault = 1
    case illegalInstruction = 2
    case breakpoint = 3
    case loadMisaligned = 4
    case loadAccessFault = 5
    case storeMisaligned = 6
    case storeAccessFault = 7
    case ecallFromU = 8
    case ecallFromS = 9
    case ecallFromM = 11
    case instructionPageFault = 12
    case loadPageFault = 13
    case storePageFault = 15
}

// MARK: - Migration (QEMU VMState)

extension Hart: Device {
    public static let driver = "riscv-cpu"
    /// QEMU target/riscv/machine.c `vmstate_riscv_cpu` is "cpu"; ours carries what RV64IMAC
    /// with M/S/U modes has, and a version of its own.
    public static let migration = DeviceMigration<State>.vmstate(
        VMStateDescription(
            name: "cpu", versionID: 1, minimumVersionID: 1,
            fields: [
                .uint64Array(\.x.values, count: 32, name: "gpr"),
                .uint64(\.pc),
                .uint8(\.priv),
                .uint64(\.retired),
                .uint64(\.minstretDelta),
                .uint64(\.mcycleDelta),
                .uint64(\.mstatus), .uint64(\.medeleg), .uint64(\.mideleg), .uint64(\.mie), .uint64(\.mip),
                .uint64(\.mtvec), .uint64(\.mscratch), .uint64(\.mepc), .uint64(\.mcause), .uint64(\.mtval),
                .uint64(\.mcounteren),
                .uint64(\.stvec), .uint64(\.sscratch), .uint64(\.sepc), .uint64(\.scause), .uint64(\.stval),
                .uint64(\.scounteren), .uint64(\.satp),
                .uint64(\.reservation, name: "load_res"),
                .bool(\.waitingForInterrupt),
            ],
            postLoad: { state, _ in
                // Only the bits an implementation can hold come back (priv. spec §3.1.6: WARL fields).
                guard state.pc & 1 == 0 else {
                    throw VMStateError.postLoadFailed(device: "cpu", version: 1, reason: "pc 0x\(String(state.pc, radix: 16)) is not 2-byte aligned")
                }
            }))
}
