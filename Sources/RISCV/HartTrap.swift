// Trap entry, trap return and interrupt selection (priv. spec §3.1.6.1
// "Privilege and Global Interrupt-Enable Stack", §3.1.7 mtvec, §3.1.8
// medeleg/mideleg, §3.1.9 mip/mie, §3.3.2 xRET, §4.1.1 sstatus).

extension Hart {
    /// Takes a synchronous exception at `sp.pointee.pc` (the faulting
    /// instruction); on return `sp.pointee.pc` is the handler.
    @inline(never)
    func raiseException(_ cause: Exception, tval: UInt64) {
        enterTrap(cause: cause.rawValue, interrupt: false, tval: tval)
    }

    /// Common trap entry. A trap from M-mode always stays in M-mode;
    /// otherwise the delegation registers decide (§3.1.8).
    func enterTrap(cause: UInt64, interrupt: Bool, tval: UInt64) {
        let s = sp
        let from = s.pointee.priv
        let deleg = interrupt ? s.pointee.mideleg : s.pointee.medeleg
        let epc = s.pointee.pc
        var mstatus = s.pointee.mstatus
        let causeValue = interrupt ? (cause | (1 << 63)) : cause
        if from != .machine && (deleg >> cause) & 1 != 0 {
            s.pointee.scause = causeValue
            s.pointee.sepc = epc
            s.pointee.stval = tval
            // SPP = from, SPIE = SIE, SIE = 0
            mstatus = (mstatus & ~Hart.mstatusSPP) | (from == .supervisor ? Hart.mstatusSPP : 0)
            mstatus = (mstatus & ~Hart.mstatusSPIE) | ((mstatus & Hart.mstatusSIE) << 4)
            mstatus &= ~Hart.mstatusSIE
            s.pointee.priv = .supervisor
            s.pointee.pc = Hart.vector(s.pointee.stvec, cause: cause, interrupt: interrupt)
        } else {
            s.pointee.mcause = causeValue
            s.pointee.mepc = epc
            s.pointee.mtval = tval
            mstatus = (mstatus & ~Hart.mstatusMPP) | (UInt64(from.rawValue) << Hart.mstatusMPPShift)
            mstatus = (mstatus & ~Hart.mstatusMPIE) | ((mstatus & Hart.mstatusMIE) << 4)
            mstatus &= ~Hart.mstatusMIE
            s.pointee.priv = .machine
            s.pointee.pc = Hart.vector(s.pointee.mtvec, cause: cause, interrupt: interrupt)
        }
        s.pointee.mstatus = mstatus
        s.pointee.waitingForInterrupt = false
        endSliceIfInterruptPending()
        selectTranslationRegime()
    }

    /// xtvec MODE 1 (vectored) sends interrupts to BASE + 4 * cause (§3.1.7).
    @inline(__always)
    static func vector(_ tvec: UInt64, cause: UInt64, interrupt: Bool) -> UInt64 {
        let base = tvec & ~3
        return (tvec & 1 == 1 && interrupt) ? base &+ 4 &* cause : base
    }

    /// mret (§3.3.2): privilege from MPP, MIE from MPIE, MPIE = 1, MPP = U;
    /// leaving M-mode clears MPRV (priv. 1.12).
    func mret() {
        let s = sp
        var mstatus = s.pointee.mstatus
        let mpp = PrivilegeMode(rawValue: UInt8((mstatus & Hart.mstatusMPP) >> Hart.mstatusMPPShift)) ?? .user
        mstatus = (mstatus & ~Hart.mstatusMIE) | ((mstatus & Hart.mstatusMPIE) >> 4)
        mstatus |= Hart.mstatusMPIE
        mstatus &= ~Hart.mstatusMPP
        if mpp != .machine { mstatus &= ~Hart.mstatusMPRV }
        s.pointee.mstatus = mstatus
        s.pointee.priv = mpp
        s.pointee.pc = s.pointee.mepc
        endSliceIfInterruptPending()
        selectTranslationRegime()
    }

    /// sret (§3.3.2, §4.1.1).
    func sret() {
        let s = sp
        var mstatus = s.pointee.mstatus
        let spp: PrivilegeMode = mstatus & Hart.mstatusSPP != 0 ? .supervisor : .user
        mstatus = (mstatus & ~Hart.mstatusSIE) | ((mstatus & Hart.mstatusSPIE) >> 4)
        mstatus |= Hart.mstatusSPIE
        mstatus &= ~Hart.mstatusSPP
        mstatus &= ~Hart.mstatusMPRV
        s.pointee.mstatus = mstatus
        s.pointee.priv = spp
        s.pointee.pc = s.pointee.sepc
        endSliceIfInterruptPending()
        selectTranslationRegime()
    }

    /// After a trap or xRET inside a slice: the interpreter runs on unless an interrupt is
    /// pending in mie (it may now be enabled; the run loop takes it between slices). Device
    /// lines change only between slices or on MMIO, which ends the slice, so this is exact in
    /// icount mode.
    @inline(__always)
    func endSliceIfInterruptPending() {
        if mipValue & sp.pointee.mie != 0 { scratch.pointee.endSlice = true }
    }

    /// mip as the guest reads it: software bits plus device lines.
    @inline(__always)
    var mipValue: UInt64 { sp.pointee.mip | scratch.pointee.mipLines }

    /// The interrupt to take now, if any (§3.1.9: M-level interrupts are
    /// enabled below M or with MIE; delegated ones below S or in S with SIE;
    /// priority MEI, MSI, MTI, SEI, SSI, STI).
    func pendingInterrupt() -> UInt64? {
        let s = sp.pointee
        let pending = mipValue & s.mie
        if pending == 0 { return nil }
        let mEnabled = s.priv != .machine || s.mstatus & Hart.mstatusMIE != 0
        let sEnabled = s.priv == .user || (s.priv == .supervisor && s.mstatus & Hart.mstatusSIE != 0)
        var enabled: UInt64 = 0
        if mEnabled { enabled |= pending & ~s.mideleg }
        if sEnabled && s.priv != .machine { enabled |= pending & s.mideleg }
        if enabled == 0 { return nil }
        for cause: UInt64 in [11, 3, 7, 9, 1, 5] where enabled & (1 << cause) != 0 {
            return cause
        }
        return nil
    }

    /// Takes a pending, enabled interrupt. WFI ends when any interrupt is
    /// pending in mie, even one that is globally disabled (§3.3.3).
    @discardableResult
    public func checkInterrupts() -> Bool {
        if sp.pointee.waitingForInterrupt && mipValue & sp.pointee.mie != 0 {
            sp.pointee.waitingForInterrupt = false
        }
        guard let cause = pendingInterrupt() else { return false }
        enterTrap(cause: cause, interrupt: true, tval: 0)
        return true
    }
}
