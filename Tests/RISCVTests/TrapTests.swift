// Traps, delegation, privilege and CSR rules (priv. spec §3.1.8, §3.3, §4.3).
import Testing

@testable import RISCV

@Suite struct TrapTests {
    @Test func unimplementedCSRIsIllegalWithInstructionInMtval() throws {
        let insn = Asm.csrrs(10, 0x3a0, 0)  // pmpcfg0
        let t = try TestMachine([insn])
        t.machine.hart.state.mtvec = t.base + 0x100
        t.step(1)
        #expect(t.state.mcause == 2)
        #expect(t.state.mtval == UInt64(insn))
        #expect(t.state.pc == t.base + 0x100)
        #expect(t.state.mepc == t.base)
    }

    @Test(arguments: [
        0x7a0 /* tselect? absent */, 0x30c /* mstateen0 */, 0x14d /* stimecmp */, 0x320 /* mcountinhibit */,
        0x30a /* menvcfg */, 0xfb0 /* mtopi */, 0x3b0 /* pmpaddr0 */,
    ])
    func probedCSRsAreAbsent(csr: UInt32) throws {
        let t = try TestMachine([Asm.csrrs(10, csr, 0)])
        t.step(1)
        #expect(t.state.mcause == 2)
    }

    @Test func implementedIdentityCSRs() throws {
        let t = try TestMachine([Asm.csrrs(10, 0x301, 0), Asm.csrrs(11, 0xf14, 0), Asm.csrrs(12, 0xb02, 0)])
        t.step(3)
        #expect(t[10] == Hart.misa)
        #expect(t[11] == 0)
        #expect(t[12] == 2)  // minstret: two instructions retired before the read
    }

    @Test func illegalInstructionFromSIsDelegatedToS() throws {
        let t = try TestMachine([0xffff_ffff])
        var s = t.state
        s.priv = .supervisor
        s.medeleg = 1 << 2
        s.stvec = t.base + 0x200
        s.mtvec = t.base + 0x100
        s.mstatus |= Hart.mstatusSIE
        t.state = s
        t.step(1)
        let after = t.state
        #expect(after.priv == .supervisor)
        #expect(after.scause == 2 && after.sepc == t.base && after.pc == t.base + 0x200)
        #expect(after.mstatus & Hart.mstatusSPP != 0)  // came from S
        #expect(after.mstatus & Hart.mstatusSPIE != 0)  // SIE saved
        #expect(after.mstatus & Hart.mstatusSIE == 0)
        #expect(after.mcause == 0)
    }

    @Test func mModeTrapsNeverDelegate() throws {
        let t = try TestMachine([Asm.ecall])
        var s = t.state
        s.medeleg = 0xffff
        s.mtvec = t.base + 0x100
        t.state = s
        t.step(1)
        #expect(t.state.mcause == 11 && t.state.priv == .machine)
    }

    @Test func vectoredInterruptAndMret() throws {
        let t = try TestMachine([Asm.nop, Asm.nop])
        try t.place([Asm.mret], at: t.base + 0x100 + 4 * 3)
        var s = t.state
        s.mtvec = (t.base + 0x100) | 1
        s.mie = Hart.irqMSI
        s.mstatus |= Hart.mstatusMIE
        t.state = s
        t.machine.bus.clint.msip = 1
        t.machine.hart.scratch.pointee.mipLines = t.machine.bus.mipLines
        #expect(t.machine.hart.checkInterrupts())
        #expect(t.state.pc == t.base + 0x100 + 12)
        #expect(t.state.mcause == UInt64(1) << 63 | 3)
        t.machine.bus.clint.msip = 0
        t.machine.hart.scratch.pointee.mipLines = 0
        t.step(1)  // mret
        #expect(t.state.pc == t.base && t.state.mstatus & Hart.mstatusMIE != 0)
    }

    @Test func sretIsIllegalInUModeAndWithTSR() throws {
        let t = try TestMachine([Asm.sret])
        var s = t.state
        s.priv = .supervisor
        s.mstatus |= Hart.mstatusTSR
        t.state = s
        t.step(1)
        #expect(t.state.mcause == 2 && t.state.priv == .machine)
    }

    @Test func sv39PageFaultOnInvalidPTE() throws {
        // S-mode, satp -> empty root table at base + 0x10000: any fetch faults.
        let t = try TestMachine([Asm.nop])
        var s = t.state
        s.priv = .supervisor
        s.satp = (8 << 60) | ((t.base + 0x10000) >> 12)
        s.mtvec = t.base + 0x100
        t.state = s
        t.step(1)
        #expect(t.state.mcause == 12)
        #expect(t.state.mtval == t.base)
    }

    @Test func sv39MisalignedSuperpageFaults() throws {
        let t = try TestMachine([Asm.ld(10, 11, 0)])
        let root = t.base + 0x10000
        // Gigapage at VPN2 = 1 with a PPN that is not 1 GiB aligned.
        let pte: UInt64 = ((t.base + 0x1000) >> 12) << 10 | 0xcf  // V R W X A D
        try t.machine.ram.write((0..<8).map { UInt8(truncatingIfNeeded: pte >> (8 * UInt64($0))) }, at: root + 8)
        var s = t.state
        s.mstatus |= Hart.mstatusMPRV | (1 << 11)  // loads as S-mode
        s.satp = (8 << 60) | (root >> 12)
        s.x[11] = 0x4000_0000
        t.state = s
        t.step(1)
        #expect(t.state.mcause == 13)
    }
}

/// mip's SEIP reads as software bit OR the PLIC's line; csrrs/csrrc change the software bit
/// alone (priv. spec §3.1.9). OpenSBI clears STIP with csrrc while the PLIC may be asserting
/// SEIP; latching the line would leave S-mode an external interrupt nobody can clear.
@Suite struct MIPReadModifyWriteTests {
    @Test func csrrcOfMIPDoesNotLatchThePLICLine() throws {
        // csrrc x5, mip, x6 (x6 = STIP)
        let t = try TestMachine([0x344 << 20 | 6 << 15 | 3 << 12 | 5 << 7 | 0x73])
        t[6] = 1 << 5
        var s = t.state
        s.mip = 1 << 5  // STIP set by software
        t.state = s
        t.machine.hart.scratch.pointee.mipLines = Hart.irqSEI
        t.step(1)
        #expect(t[5] & Hart.irqSEI != 0, "the read shows the line")
        #expect(t.state.mip == 0, "STIP cleared, SEIP not latched")
        t.machine.hart.scratch.pointee.mipLines = 0
        #expect(t.machine.hart.mipValue & Hart.irqSEI == 0)
    }
}
