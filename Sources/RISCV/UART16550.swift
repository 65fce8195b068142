// NS16550A UART ("ns16550a", QEMU hw/char/serial.c): 8 byte-wide registers
// (reg-shift 0), 16-byte receive FIFO, interrupts for received data,
// transmitter empty and line status. Transmission is instantaneous.
import EmulatorCore
import VMState

public final class UART16550 {
    // Register offsets (DLAB selects DLL/DLM at 0/1)
    static let rbrTHR: UInt64 = 0, ier: UInt64 = 1, iirFCR: UInt64 = 2, lcr: UInt64 = 3
    static let mcr: UInt64 = 4, lsr: UInt64 = 5, msr: UInt64 = 6, scr: UInt64 = 7

    static let ierRDI: UInt8 = 0x01, ierTHRI: UInt8 = 0x02, ierRLSI: UInt8 = 0x04
    static let iirNone: UInt8 = 0x01, iirTHRI: UInt8 = 0x02, iirRDI: UInt8 = 0x04
    static let iirRLSI: UInt8 = 0x06, iirCTI: UInt8 = 0x0c, iirFIFO: UInt8 = 0xc0
    static let lsrDR: UInt8 = 0x01, lsrOE: UInt8 = 0x02, lsrTHRE: UInt8 = 0x20, lsrTEMT: UInt8 = 0x40
    static let lcrDLAB: UInt8 = 0x80
    static let fcrEnable: UInt8 = 0x01, fcrClearRX: UInt8 = 0x02
    /// DCD | DSR | CTS: a terminal is attached.
    static let msrDefault: UInt8 = 0xb0
    static let fifoSize = 16
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
        public init() {}
    }

    public var state = State()

    /// Bytes the guest transmitted since the run loop last drained them.
    var transmitted: [UInt8] = []

    var fifoEnabled: Bool { state.fcr & UART16550.fcrEnable != 0 }
    var receiveCapacity: Int { (fifoEnabled ? UART16550.fifoSize : 1) - state.receiveFIFO.count }

    /// Host input, taken only while the FIFO has room (like QEMU's
    /// can_receive), so nothing is ever overrun.
    func receive(_ byte: UInt8) {
        guard receiveCapacity > 0 else { return }
        state.receiveFIFO.append(byte)
    }

    private var triggerLevel: Int {
        switch state.fcr >> 6 {
        case 0: return 1
        case 1: return 4
        case 2: return 8
        default: return 14
        }
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
            return UInt64(id | (fifoEnabled ? UART16550.iirFIFO : 0))
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
        case UART16550.lsr, UART16550.msr: break // read-only
        case UART16550.scr: state.scr = v
        default:
            GuestErrorLog.log("uart: write beyond registers at 0x\(String(offset, radix: 16))")
        }
    }

    func reset() {
        state = State()
        transmitted.removeAll()
    }
}

// MARK: - Migration (QEMU VMState)

extension UART16550: Device {
    public static let driver = "ns16550a"
    public static let migration = DeviceMigration<State>.vmstate(VMStateDescription(
        name: "serial", versionID: 1, minimumVersionID: 1,
        fields: [
            .uint16(\.divisor), .uint8(\.ier), .uint8(\.lcr), .uint8(\.mcr), .uint8(\.lsrErrors, name: "lsr_errors"),
            .uint8(\.msr), .uint8(\.scr), .uint8(\.fcr),
            .bool(\.thrInterruptPending, name: "thr_ipending"),
            .uint8(\.receiveFIFOCount, name: "recv_fifo_count"),
            .vbuffer(\.receiveFIFO, length: \.receiveFIFOCount, maximum: UART16550.fifoSize, name: "recv_fifo"),
        ]))
}

extension UART16550.State {
    /// The receive FIFO's length on the wire, before its bytes (QEMU's `recv_fifo` count).
    var receiveFIFOCount: UInt8 {
        get { UInt8(clamping: receiveFIFO.count) }
        set { receiveFIFO = [UInt8](repeating: 0, count: Int(min(newValue, UInt8(UART16550.fifoSize)))) }
    }
}
