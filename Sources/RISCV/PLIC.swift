// SiFive PLIC ("sifive,plic-1.0.0", RISC-V PLIC spec v1.0.0; QEMU
// hw/intc/sifive_plic.c). Sources 1...95 with level-triggered gateways; two
// contexts for hart 0: 0 = M-mode (drives MEIP), 1 = S-mode (drives SEIP).
import EmulatorCore
import VMState

public final class PLIC {
    // Register offsets (PLIC spec §3, "Memory Map")
    static let priorityBase: UInt64 = 0x0
    static let pendingBase: UInt64 = 0x1000
    static let enableBase: UInt64 = 0x2000
    static let enableStride: UInt64 = 0x80
    static let contextBase: UInt64 = 0x20_0000
    static let contextStride: UInt64 = 0x1000
    static let contextCount = 2
    static let priorityMask: UInt32 = 7
    static let words = (VirtIRQ.sourceCount + 31) / 32

    public struct State: Equatable, Sendable {
        public var priority = [UInt32](repeating: 0, count: VirtIRQ.sourceCount)
        public var pending = [UInt32](repeating: 0, count: PLIC.words)
        /// Claimed and not yet completed ("in service").
        public var claimed = [UInt32](repeating: 0, count: PLIC.words)
        /// enable[context * words + word]
        public var enable = [UInt32](repeating: 0, count: PLIC.words * PLIC.contextCount)
        public var threshold = [UInt32](repeating: 0, count: PLIC.contextCount)
        public init() {}
    }

    public var state = State()

    /// Current level of each source's interrupt line (set by devices).
    private var level = [UInt32](repeating: 0, count: PLIC.words)

    @inline(__always) private static func bit(_ irq: Int) -> (Int, UInt32) { (irq >> 5, 1 << UInt32(irq & 31)) }

    /// Level-triggered gateway: a high line makes the source pending unless
    /// it is in service; a low line withdraws the request (as QEMU does).
    func setLevel(irq: Int, high: Bool) {
        guard irq > 0 && irq < VirtIRQ.sourceCount else { return }
        let (w, b) = PLIC.bit(irq)
        if high { level[w] |= b } else { level[w] &= ~b }
        if high && state.claimed[w] & b == 0 { state.pending[w] |= b }
        if !high { state.pending[w] &= ~b }
    }

    /// The highest-priority pending, enabled source above the threshold
    /// (ties: lowest ID), or 0.
    private func best(context: Int) -> Int {
        var bestIRQ = 0
        var bestPriority: UInt32 = state.threshold[context]
        for w in 0..<PLIC.words {
            var candidates = state.pending[w] & state.enable[context * PLIC.words + w]
            while candidates != 0 {
                let i = candidates.trailingZeroBitCount
                candidates &= candidates - 1
                let irq = w * 32 + i
                let p = state.priority[irq]
                if p > bestPriority { bestPriority = p; bestIRQ = irq }
            }
        }
        return bestIRQ
    }

    /// MEIP/SEIP as mip bits.
    var lines: UInt64 {
        (best(context: 0) != 0 ? Hart.irqMEI : 0) | (best(context: 1) != 0 ? Hart.irqSEI : 0)
    }

    func read(offset: UInt64, size: Int) -> UInt64 {
        guard size == 4 else {
            GuestErrorLog.log("plic: bad read size \(size) at 0x\(String(offset, radix: 16))")
            return 0
        }
        switch offset {
        case PLIC.priorityBase..<PLIC.pendingBase:
            let irq = Int(offset >> 2)
            return irq < VirtIRQ.sourceCount ? UInt64(state.priority[irq]) : 0
        case PLIC.pendingBase..<PLIC.enableBase:
            let w = Int((offset - PLIC.pendingBase) >> 2)
            return w < PLIC.words ? UInt64(state.pending[w]) : 0
        case PLIC.enableBase..<PLIC.contextBase:
            let ctx = Int((offset - PLIC.enableBase) / PLIC.enableStride)
            let w = Int(((offset - PLIC.enableBase) % PLIC.enableStride) >> 2)
            guard ctx < PLIC.contextCount, w < PLIC.words else { break }
            return UInt64(state.enable[ctx * PLIC.words + w])
        default:
            let ctx = Int((offset &- PLIC.contextBase) / PLIC.contextStride)
            guard offset >= PLIC.contextBase, ctx < PLIC.contextCount else { break }
            switch (offset - PLIC.contextBase) % PLIC.contextStride {
            case 0: return UInt64(state.threshold[ctx])
            case 4: return UInt64(claim(context: ctx))
            default: break
            }
        }
        GuestErrorLog.log("plic: read of unimplemented register 0x\(String(offset, radix: 16))")
        return 0
    }

    /// Claim (PLIC spec §8): the source stops being pending and is in service.
    private func claim(context: Int) -> Int {
        let irq = best(context: context)
        if irq != 0 {
            let (w, b) = PLIC.bit(irq)
            state.pending[w] &= ~b
            state.claimed[w] |= b
        }
        return irq
    }

    func write(offset: UInt64, size: Int, value: UInt64) {
        guard size == 4 else {
            GuestErrorLog.log("plic: bad write size \(size) at 0x\(String(offset, radix: 16))")
            return
        }
        let v = UInt32(truncatingIfNeeded: value)
        switch offset {
        case PLIC.priorityBase..<PLIC.pendingBase:
            let irq = Int(offset >> 2)
            if irq > 0 && irq < VirtIRQ.sourceCount { state.priority[irq] = v & PLIC.priorityMask; return }
        case PLIC.pendingBase..<PLIC.enableBase:
            break  // pending bits are read-only
        case PLIC.enableBase..<PLIC.contextBase:
            let ctx = Int((offset - PLIC.enableBase) / PLIC.enableStride)
            let w = Int(((offset - PLIC.enableBase) % PLIC.enableStride) >> 2)
            if ctx < PLIC.contextCount && w < PLIC.words {
                state.enable[ctx * PLIC.words + w] = w == 0 ? v & ~1 : v  // source 0 does not exist
                return
            }
        default:
            let ctx = Int((offset &- PLIC.contextBase) / PLIC.contextStride)
            guard offset >= PLIC.contextBase, ctx < PLIC.contextCount else { break }
            switch (offset - PLIC.contextBase) % PLIC.contextStride {
            case 0: state.threshold[ctx] = v & PLIC.priorityMask; return
            case 4:
                // Completion (§9): ignored unless the source is enabled for this context.
                let irq = Int(v)
                guard irq > 0 && irq < VirtIRQ.sourceCount else { break }
                let (w, b) = PLIC.bit(irq)
                if state.enable[ctx * PLIC.words + w] & b != 0 {
                    state.claimed[w] &= ~b
                    if level[w] & b != 0 { state.pending[w] |= b }
                }
                return
            default: break
            }
        }
        GuestErrorLog.log("plic: write of unimplemented register 0x\(String(offset, radix: 16))")
    }

    func reset() {
        state = State()
        level = [UInt32](repeating: 0, count: PLIC.words)
    }
}

// MARK: - Migration (QEMU VMState)

extension PLIC: Device {
    public static let driver = "riscv.sifive.plic"
    public static let migration = DeviceMigration<State>.vmstate(
        VMStateDescription(
            name: "riscv_sifive_plic", versionID: 1, minimumVersionID: 1,
            fields: [
                .uint32Array(\.priority, count: VirtIRQ.sourceCount, name: "source_priority"),
                .uint32Array(\.pending, count: PLIC.words),
                .uint32Array(\.claimed, count: PLIC.words),
                .uint32Array(\.enable, count: PLIC.words * PLIC.contextCount),
                .uint32Array(\.threshold, count: PLIC.contextCount, name: "target_priority"),
            ]))
}
