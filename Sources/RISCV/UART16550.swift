// NS16550A UART ("ns16550a", QEMU hw/char/serial.c): 8 byte-wide registers
// (reg-shift 0), a receive FIFO of `fifo-depth` bytes (16 as on a 16550A, or 64 as
// on a 16750 in 64-byte mode, from release 1.1 / virt-1.1), interrupts for received
// data, transmitter empty and line status. Transmission is instantaneous.
import EmulatorCore
import VMState

public final class UART16550 {
    // Register offsets (DLAB selects DLL/DLM at 0/1)
    static let rbrTHR: UInt64 = 0, ier: UInt64 = 1, iirFCR: UInt64 = 2, lcr: UInt64 = 3
    static let mcr: UInt64 = 4, lsr: UInt64 = 5, msr: UInt64 = 6, scr: UInt64 = 7

    static let ierRDI: UInt8 = 0x01, ierTHRI: UInt8 = 0x02, ierRLSI: UInt8 = 0x04
    static let iirNone: UInt8 = 0x01, iirTHRI: UInt8 = 0x02, iirRDI: UInt8 = 0x04
    static let iirRLSI: UInt8 = 0x06, iirCTI: UInt8 = 0x0c, iirFIFO: UInt8 = 0xc0
    /// IIR bit 5: "64-byte FIFO enabled" (16750); how a guest tells the deeper FIFO apart.
    static let iirFIFO64: UInt8 = 0x20
    static let lsrDR: UInt8 = 0x01, lsrOE: UInt8 = 0x02, lsrTHRE: UInt8 = 0x20, lsrTEMT: UInt8 = 0x40
    static let lcrDLAB: UInt8 = 0x80
    static let fcrEnable: UInt8 = 0x01, fcrClearRX: UInt8 = 0x02
    /// DCD | DSR | CTS: a terminal is attached.
    static let msrDefault: UInt8 = 0xb0
    /// The 16550A's FIFO depth: what QEMU's ns16550a has and what virt-1.0 keeps, and all
    /// a stream's main `serial` section ever carries (the rest travels in serial/fifo-depth).
    static let fifoSize: UInt8 = 16
    /// The depths `fifo-depth` accepts: 16550A and 16750.
    static let fifoDepths: [UInt8] = [16, 64]
    /// 3.6864 MHz, QEMU's `clock-frequency` for this UART.
    static let clockFrequency: UInt32 = 3_686_400

    public struct State: Equatable, Sendable {
        public var divisor: UInt16 = 0
        public var ier: UInt8 = 0
        public var lcr: UInt8 = 0
        public var mcr: UInt8 = 0
        public var lsrErrors: UInt8 = 0
        public var msr: UInt8 = UART16550.msrDefault
        public var scr: UInt8 = 0
        public var fcr: UInt8 = 0
        /// A THR-empty interrupt is pending (cleared by reading IIR or writing THR).
        public var thrInterruptPending = false
        public var receiveFIFO: [UInt8] = []
        /// The `fifo-depth` property: guest-visible (IIR bit 5, how many bytes the FIFO
        /// holds, the trigger levels), so it is state a stream carries when not 16.
        public var fifoDepth: UInt8 = UART16550.fifoSize
        public init() {}
    }

    public var state = State()

    /// The depth this machine type gives it; reset returns to it.
    let configuredFIFODepth: UInt8

    init(fifoDepth: UInt8 = UART16550.fifoSize) {
        configuredFIFODepth = fifoDepth
        state.fifoDepth = fifoDepth
    }

    /// Built with the machine type's properties (virt-1.0's compat array sets fifo-depth 16).
    convenience init(properties: DeviceProperties) throws {
        let depth = properties.uint("fifo-depth")
        guard let valid = UART16550.fifoDepths.first(where: { UInt64($0) == depth }) else {
            throw EmulatorCore.MachineError.invalidPropertyValue(
                driver: UART16550.driver, property: "fifo-depth",
                value: String(depth))
        }
        self.init(fifoDepth: valid)
    }

    /// Bytes the guest transmitted since the run loop last drained them.
    var transmitted: [UInt8] = []

    var fifoEnabled: Bool { state.fcr & UART16550.fcrEnable != 0 }
    var receiveCapacity: Int { (fifoEnabled ? Int(state.fifoDepth) : 1) - state.receiveFIFO.count }

    /// Host input, taken only while the FIFO has room (like QEMU's
    /// can_receive), so nothing is ever overrun.
    func receive(_ byte: UInt8) {
        guard receiveCapacity > 0 else { return }
        state.receiveFIFO.append(byte)
    }

    /// FCR bits 7:6; a 16750 in 64-byte mode scales them to 1, 16, 32, 56.
    private var triggerLevel: Int {
        let levels = state.fifoDepth == 64 ? [1, 16, 32, 56] : [1, 4, 8, 14]
        return levels[Int(state.fcr >> 6)]
    }

    /// IIR's interrupt identification, highest priority first.
    private var interruptID: UInt8 {
        let s = state
        if s.ier & UART16550.ierRLSI != 0 && s.lsrErrors != 0 { return UART16550.iirRLSI }
        if s.ier & UART16550.ierRDI != 0 && !s.receiveFIFO.isEmpty {
            // Below the trigger level the character-timeout source reports it.
            return fifoEnabled && s.receiveFIFO.count < triggerLevel ? UART16550.iirCTI : UART16550.iirRDI
        }
        if s.ier & UART16550.ierTHRI != 0 && s.thrInterruptPending { return UART16550.iirTHRI }
        return UART16550.iirNone
    }

    /// The interrupt line to the PLIC.
    var interruptLine: Bool { interruptID != UART16550.iirNone }

    func read(offset: UInt64, size: Int) -> UInt64 {
        guard size == 1 else {
            GuestErrorLog.log("uart: bad read size \(size) at 0x\(String(offset, radix: 16))")
            return 0
        }
        let dlab = state.lcr & UART16550.lcrDLAB != 0
        switch offset {
        case UART16550.rbrTHR:
            if dlab { return UInt64(state.divisor & 0xff) }
            if state.receiveFIFO.isEmpty { return 0 }
            return UInt64(state.receiveFIFO.removeFirst())
        case UART16550.ier:
            return dlab ? UInt64(state.divisor >> 8) : UInt64(state.ier)
        case UART16550.iirFCR:
            let id = interruptID
            if id == UART16550.iirTHRI { state.thrInterruptPending = false }
            let deep = state.fifoDepth == 64 ? UART16550.iirFIFO64 : 0
            return UInt64(id | (fifoEnabled ? UART16550.iirFIFO | deep : 0))
        case UART16550.lcr: return UInt64(state.lcr)
        case UART16550.mcr: return UInt64(state.mcr)
        case UART16550.lsr:
            var lsr = UART16550.lsrTHRE | UART16550.lsrTEMT | state.lsrErrors
            if !state.receiveFIFO.isEmpty { lsr |= UART16550.lsrDR }
            state.lsrErrors = 0
            return UInt64(lsr)
        case UART16550.msr: return UInt64(state.msr)
        case UART16550.scr: return UInt64(state.scr)
        default:
            GuestErrorLog.log("uart: read beyond registers at 0x\(String(offset, radix: 16))")
            return 0
        }
    }

    func write(offset: UInt64, size: Int, value: UInt64) {
        guard size == 1 else {
            GuestErrorLog.log("uart: bad write size \(size) at 0x\(String(offset, radix: 16))")
            return
        }
        let v = UInt8(truncatingIfNeeded: value)
        let dlab = state.lcr & UART16550.lcrDLAB != 0
        switch offset {
        case UART16550.rbrTHR:
            if dlab { state.divisor = (state.divisor & 0xff00) | UInt16(v); return }
            transmitted.append(v)
            // The byte leaves at once: THR is empty again (QEMU serial_xmit).
            state.thrInterruptPending = true
        case UART16550.ier:
            if dlab { state.divisor = (state.divisor & 0x00ff) | UInt16(v) << 8; return }
            let old = state.ier
            state.ier = v & 0x0f
            // Enabling THRI while THR is empty raises it (serial.c).
            if old & UART16550.ierTHRI == 0 && state.ier & UART16550.ierTHRI != 0 {
                state.thrInterruptPending = true
            }
        case UART16550.iirFCR:
            // Toggling FIFO enable flushes the FIFOs (serial.c does the same,
            // so input typed before the guest sets up the UART is dropped).
            let toggled = (v ^ state.fcr) & UART16550.fcrEnable != 0
            if toggled || v & UART16550.fcrClearRX != 0 { state.receiveFIFO.removeAll() }
            state.fcr = v & 0xc9
        case UART16550.lcr: state.lcr = v
        case UART16550.mcr: state.mcr = v & 0x1f
        case UART16550.lsr, UART16550.msr: break  // read-only
        case UART16550.scr: state.scr = v
        default:
            GuestErrorLog.log("uart: write beyond registers at 0x\(String(offset, radix: 16))")
        }
    }

    func reset() {
        state = State()
        state.fifoDepth = configuredFIFODepth
        transmitted.removeAll()
    }
}

// MARK: - Migration (QEMU VMState)

extension UART16550: Device {
    public static let driver = "ns16550a"
    public static let properties: [PropertyDefinition] = [
        .uint("fifo-depth", default: 64, description: "receive FIFO depth in bytes: 16 (16550A) or 64 (16750)")
    ]

    /// Release 1.0's layout, unchanged: the first 16 FIFO bytes. A deeper FIFO's depth and
    /// remaining bytes travel in serial/fifo-depth, sent only when the depth is not 16 — so
    /// a virt-1.0 guest (fifo-depth=16 by compat) writes exactly what release 1.0 wrote.
    public static let migration = DeviceMigration<State>.vmstate(
        VMStateDescription(
            name: "serial", versionID: 1, minimumVersionID: 1,
            fields: [
                .uint16(\.divisor), .uint8(\.ier), .uint8(\.lcr), .uint8(\.mcr), .uint8(\.lsrErrors, name: "lsr_errors"),
                .uint8(\.msr), .uint8(\.scr), .uint8(\.fcr),
                .bool(\.thrInterruptPending, name: "thr_ipending"),
                .uint8(\.receiveFIFOCount, name: "recv_fifo_count"),
                .vbuffer(\.receiveFIFO.serialHead, length: \.receiveFIFOCount, maximum: Int(UART16550.fifoSize), name: "recv_fifo"),
            ],
            subsections: [VMStateSubsection(fifoDepthSubsection, needed: { $0.fifoDepth != UART16550.fifoSize })],
            // Absent serial/fifo-depth means a 16550A FIFO, whatever the destination held before.
            preLoad: { $0.fifoDepth = UART16550.fifoSize },
            postLoad: { state, _ in
                guard UART16550.fifoDepths.contains(state.fifoDepth) else {
                    throw UARTStateError("fifo_depth \(state.fifoDepth) is neither 16 nor 64")
                }
                guard state.receiveFIFO.count <= Int(state.fifoDepth) else {
                    throw UARTStateError("\(state.receiveFIFO.count) bytes in a \(state.fifoDepth)-byte FIFO")
                }
            }))

    static let fifoDepthSubsection = VMStateDescription<State>(
        name: "serial/fifo-depth", versionID: 1, minimumVersionID: 1,
        fields: [
            .uint8(\.fifoDepth, name: "fifo_depth"),
            .uint8(\.receiveFIFOExtraCount, name: "recv_fifo_extra_count"),
            .vbuffer(
                \.receiveFIFO.serialExtra, length: \.receiveFIFOExtraCount,
                maximum: 64 - Int(UART16550.fifoSize), name: "recv_fifo_extra"),
        ])

    /// With fifo-depth 16 (virt-1.0) serial/fifo-depth is never `needed`, so virt-1.0's dump
    /// leaves it out and stays what release 1.0 froze.
    public static func subsectionsSwitchedOff(by properties: DeviceProperties) -> Set<String> {
        properties.uint("fifo-depth") == UInt64(fifoSize) ? [fifoDepthSubsection.name] : []
    }
}

struct UARTStateError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension UART16550.State {
    /// The bytes the main section carries (QEMU's `recv_fifo` count), at most 16.
    var receiveFIFOCount: UInt8 {
        get { UInt8(clamping: min(receiveFIFO.count, Int(UART16550.fifoSize))) }
        set { receiveFIFO = [UInt8](repeating: 0, count: Int(min(newValue, UART16550.fifoSize))) }
    }

    /// The bytes beyond the first 16, carried by serial/fifo-depth.
    var receiveFIFOExtraCount: UInt8 {
        get { UInt8(clamping: max(0, receiveFIFO.count - Int(UART16550.fifoSize))) }
        set { receiveFIFO = Array(receiveFIFO.prefix(Int(UART16550.fifoSize))) + [UInt8](repeating: 0, count: Int(newValue)) }
    }
}

/// The receive FIFO split at 16 bytes for the wire. Key paths through these keep the stored
/// `receiveFIFO` covered by the state description.
extension Array where Element == UInt8 {
    fileprivate var serialHead: [UInt8] {
        get { Array(prefix(Int(UART16550.fifoSize))) }
        set { self = newValue + dropFirst(Swift.min(count, Int(UART16550.fifoSize))) }
    }

    fileprivate var serialExtra: [UInt8] {
        get { Array(dropFirst(Int(UART16550.fifoSize))) }
        set { self = Array(prefix(Int(UART16550.fifoSize))) + newValue }
    }
}
