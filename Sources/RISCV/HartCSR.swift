// Zicsr: CSR access rules (priv. spec §2.1: bits 11:10 = read-only when 3,
// bits 9:8 = lowest privilege) and the CSRs this hart implements. Every other
// number raises illegal-instruction, which is how OpenSBI learns that PMP,
// mcountinhibit, menvcfg, mstateen0, stimecmp, AIA and friends are absent.

extension Hart {
    /// The value a CSR read returns, or nil when the CSR does not exist or
    /// the current privilege may not read it.
    func csrRead(_ csr: Int) -> UInt64? {
        let s = sp.pointee
        switch csr {
        case CSR.sstatus: return s.mstatus & Hart.sstatusReadable
        case CSR.sie: return s.mie & s.mideleg
        case CSR.stvec: return s.stvec
        case CSR.scounteren: return s.scounteren
        case CSR.sscratch: return s.sscratch
        case CSR.sepc: return s.sepc
        case CSR.scause: return s.scause
        case CSR.stval: return s.stval
        case CSR.sip: return mipValue & s.mideleg
        case CSR.satp:
            // TVM traps S-mode satp accesses (§3.1.6.5).
            if s.priv == .supervisor && s.mstatus & Hart.mstatusTVM != 0 { return nil }
            return s.satp
        case CSR.mstatus: return s.mstatus
        case CSR.misa: return Hart.misa
        case CSR.medeleg: return s.medeleg
        case CSR.mideleg: return s.mideleg
        case CSR.mie: return s.mie
        case CSR.mtvec: return s.mtvec
        case CSR.mcounteren: return s.mcounteren
        case CSR.mscratch: return s.mscratch
        case CSR.mepc: return s.mepc
        case CSR.mcause: return s.mcause
        case CSR.mtval: return s.mtval
        case CSR.mip: return mipValue
        case CSR.mcycle: return s.retired &+ s.mcycleDelta
        case CSR.minstret: return s.retired &+ s.minstretDelta
        // Required by the spec; this hart counts no events (hardwired zero).
        case CSR.mhpmcounter3...CSR.mhpmcounter31, CSR.mhpmevent3...CSR.mhpmevent31: return 0
        case CSR.cycle...CSR.hpmcounter31:
            // Unprivileged counters, gated by mcounteren/scounteren (§3.1.11, §4.1.5).
            let bit: UInt64 = 1 << UInt64(csr - CSR.cycle)
            if s.priv != .machine && s.mcounteren & bit == 0 { return nil }
            if s.priv == .user && s.scounteren & bit == 0 { return nil }
            switch csr {
            case CSR.cycle: return s.retired &+ s.mcycleDelta
            case CSR.time: return bus.clint.clock.mtime
            case CSR.instret: return s.retired &+ s.minstretDelta
            default: return 0
            }
        case CSR.mvendorid, CSR.marchid, CSR.mimpid: return 0
        case CSR.mhartid: return hartID
        default: return nil
        }
    }

    /// Writes a CSR (WARL fields legalised). False when it does not exist.
    func csrWrite(_ csr: Int, _ v: UInt64) -> Bool {
        let s = sp
        switch csr {
        case CSR.sstatus:
            writeMstatus((s.pointee.mstatus & ~Hart.sstatusWritable) | (v & Hart.sstatusWritable))
        case CSR.sie:
            let mask = s.pointee.mideleg & Hart.sInterrupts
            s.pointee.mie = (s.pointee.mie & ~mask) | (v & mask)
        case CSR.stvec: s.pointee.stvec = v & ~2
        case CSR.scounteren: s.pointee.scounteren = v & 0xffff_ffff
        case CSR.sscratch: s.pointee.sscratch = v
        case CSR.sepc: s.pointee.sepc = v & ~1
        case CSR.scause: s.pointee.scause = v
        case CSR.stval: s.pointee.stval = v
        case CSR.sip:
            // Only SSIP is writable through sip, and only when delegated (§4.1.3).
            let mask = s.pointee.mideleg & Hart.irqSSI
            s.pointee.mip = (s.pointee.mip & ~mask) | (v & mask)
        case CSR.satp:
            if s.pointee.priv == .supervisor && s.pointee.mstatus & Hart.mstatusTVM != 0 { return false }
            // Unsupported MODE: the whole write has no effect (§4.1.11).
            let mode = v >> 60
            guard mode == 0 || mode == 8 else { return true }
            s.pointee.satp = v & ((0xf << 60) | (0xffff << 44) | ((1 << 44) - 1))
            flushTLB()
        case CSR.mstatus: writeMstatus(v)
        case CSR.misa: break  // WARL, fixed
        case CSR.medeleg: s.pointee.medeleg = v & Hart.medelegWritable
        case CSR.mideleg: s.pointee.mideleg = v & Hart.sInterrupts
        case CSR.mie: s.pointee.mie = v & Hart.allInterrupts
        case CSR.mtvec: s.pointee.mtvec = v & ~2
        case CSR.mcounteren: s.pointee.mcounteren = v & 0xffff_ffff
        case CSR.mscratch: s.pointee.mscratch = v
        case CSR.mepc: s.pointee.mepc = v & ~1
        case CSR.mcause: s.pointee.mcause = v
        case CSR.mtval: s.pointee.mtval = v
        case CSR.mip:
            s.pointee.mip = (s.pointee.mip & ~Hart.sInterrupts) | (v & Hart.sInterrupts)
        // The writing instruction itself retires after the write (§3.1.10):
        // the next read sees exactly v.
        case CSR.mcycle: s.pointee.mcycleDelta = v &- (s.pointee.retired &+ 1)
        case CSR.minstret: s.pointee.minstretDelta = v &- (s.pointee.retired &+ 1)
        case CSR.mhpmcounter3...CSR.mhpmcounter31, CSR.mhpmevent3...CSR.mhpmevent31: break
        default: return false
        }
        return true
    }

    func writeMstatus(_ v: UInt64) {
        let s = sp
        let old = s.pointee.mstatus
        var new = (old & ~Hart.mstatusWritable) | (v & Hart.mstatusWritable) | Hart.mstatusFixed
        // MPP is WARL over implemented modes; 2 (reserved) keeps the old value.
        if (new & Hart.mstatusMPP) >> Hart.mstatusMPPShift == 2 {
            new = (new & ~Hart.mstatusMPP) | (old & Hart.mstatusMPP)
        }
        s.pointee.mstatus = new
        // MXR changes what a read may see in every regime (§3.1.6.3); MPRV, MPP and SUM only
        // choose which regime's TLBs are in use.
        if (old ^ new) & Hart.mstatusMXR != 0 { flushTLB() }
        if (old ^ new) & (Hart.mstatusMPRV | Hart.mstatusMPP | Hart.mstatusSUM) != 0 { selectTranslationRegime() }
    }

    /// Executes csrrw/csrrs/csrrc and their immediate forms. False after
    /// raising illegal-instruction.
    @inline(never)
    func executeCSR(_ op: Op) -> Bool {
        let csr = Int(op.imm) & 0xfff
        let immediate = op.kind == .csrrwi || op.kind == .csrrsi || op.kind == .csrrci
        let source = immediate ? UInt64(op.rs1) : x[Int(op.rs1)]
        let isWrite = op.kind == .csrrw || op.kind == .csrrwi
        let writes = isWrite || op.rs1 != 0
        let privOK = Int(sp.pointee.priv.rawValue) >= (csr >> 8) & 3
        let readOnly = csr >> 10 == 3
        guard privOK, !(writes && readOnly), let old = csrRead(csr) else {
            raiseException(.illegalInstruction, tval: Hart.encodeCSR(op))
            return false
        }
        if writes {
            // mip's SEIP reads as the software bit OR the PLIC's line, but csrrs/csrrc modify the
            // software bit alone (priv. spec §3.1.9); otherwise OpenSBI's `csr_clear(mip, STIP)`
            // would latch a pending PLIC interrupt into SEIP for good.
            let base = csr == CSR.mip ? old & ~(scratch.pointee.mipLines & Hart.irqSEI & ~sp.pointee.mip) : old
            let new: UInt64
            switch op.kind {
            case .csrrw, .csrrwi: new = source
            case .csrrs, .csrrsi: new = base | source
            default: new = base & ~source
            }
            guard csrWrite(csr, new) else {
                raiseException(.illegalInstruction, tval: Hart.encodeCSR(op))
                return false
            }
            switch csr {
            case CSR.sscratch, CSR.sepc, CSR.scause, CSR.stval, CSR.stvec,
                CSR.mscratch, CSR.mepc, CSR.mcause, CSR.mtval, CSR.mtvec:
                // Trap-handler bookkeeping: nothing about interrupts, translation or time.
                break
            default:
                // Interrupt enables, translation, counters: back to the run loop, which
                // re-checks interrupts and (icount) the timer deadline.
                scratch.pointee.endSlice = true
            }
        }
        if op.rd != 0 { x[Int(op.rd)] = old }
        return true
    }

    /// Re-encodes a CSR instruction for mtval (OpenSBI reads it from there).
    static func encodeCSR(_ op: Op) -> UInt64 {
        let funct3: UInt32
        switch op.kind {
        case .csrrw: funct3 = 1
        case .csrrs: funct3 = 2
        case .csrrc: funct3 = 3
        case .csrrwi: funct3 = 5
        case .csrrsi: funct3 = 6
        default: funct3 = 7
        }
        let bits = (UInt32(op.imm) & 0xfff) << 20 | UInt32(op.rs1) << 15 | funct3 << 12 | UInt32(op.rd) << 7 | 0x73
        return UInt64(bits)
    }
}
