// The decoded-instruction caches and the per-regime TLBs stay exact: a store into the code
// the interpreter is running, a page remapped under code it has decoded, a translation used
// with MPRV, and no translation of one privilege reaching another.
import Testing

@testable import RISCV

@Suite struct CodeCacheTests {
    static func b(_ f3: UInt32, _ rs1: UInt32, _ rs2: UInt32, _ offset: Int32) -> UInt32 {
        let u = UInt32(bitPattern: offset)
        return (u >> 12 & 1) << 31 | (u >> 5 & 0x3f) << 25 | rs2 << 20 | rs1 << 15 | f3 << 12
            | (u >> 1 & 0xf) << 8 | (u >> 11 & 1) << 7 | 0x63
    }
    static func jal(_ rd: UInt32, _ offset: Int32) -> UInt32 {
        let u = UInt32(bitPattern: offset)
        return (u >> 20 & 1) << 31 | (u >> 1 & 0x3ff) << 21 | (u >> 11 & 1) << 20 | (u >> 12 & 0xff) << 12 | rd << 7 | 0x6f
    }
    static func jalr(_ rd: UInt32, _ rs1: UInt32) -> UInt32 { Asm.i(0, rs1, 0, rd, 0x67) }
    static func add(_ rd: UInt32, _ rs1: UInt32, _ rs2: UInt32) -> UInt32 { Asm.r(0, rs2, rs1, 0, rd, 0x33) }
    static let sfenceVMA: UInt32 = 0x1200_0073

    /// Runs slices until `count` instructions retired in all (traps and xRETs end slices).
    static func run(_ t: TestMachine, retired count: UInt64) {
        for _ in 0..<1000 where t.state.retired < count {
            _ = t.machine.hart.run(budget: Int(count - t.state.retired))
        }
    }

    static func write(_ t: TestMachine, _ value: UInt64, at address: UInt64) throws {
        try t.machine.ram.write((0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }, at: address)
    }

    @Test func storeIntoTheRunningBlockIsSeen() throws {
        // A loop whose body rewrites its own fourth instruction every round, with a new immediate
        // each time: rounds 2 and 3 run code whose decoded copy the store must drop. (Such a
        // store ends the slice, so the interpreter never reads on in stale slots.)
        let t = try TestMachine([
            Asm.s(12, 12, 11, 2),  // 0: sw a2, 12(a1)
            Self.add(12, 12, 13),  // 4: add a2, a2, a3   (next immediate + 1)
            Asm.nop,  // 8
            Asm.addi(10, 10, 0),  // 12: addi a0, a0, <patched>
            Asm.addi(5, 5, -1),  // 16: addi t0, t0, -1
            Self.b(1, 5, 0, -20),  // 20: bne t0, x0, 0
            Self.jal(0, 0),  // 24: j 24
        ])
        t[11] = t.base
        t[12] = UInt64(Asm.addi(10, 10, 7))
        t[13] = 1 << 20
        t[5] = 3
        Self.run(t, retired: 3 * 6 + 2)
        #expect(t[10] == 7 + 8 + 9)
        #expect(t.state.pc == t.base + 24)
        #expect(t.state.retired == 3 * 6 + 2)
    }

    @Test func storeToTheNextInstructionIsSeen() throws {
        // The instruction right after the store is rewritten after it was decoded once.
        let t = try TestMachine([
            Asm.s(4, 12, 11, 2),  // 0: sw a2, 4(a1)
            Asm.addi(10, 10, 1),  // 4: addi a0, a0, 1 -> addi a0, a0, 100 from round 1 on
            Asm.addi(5, 5, -1),  // 8
            Self.b(1, 5, 0, -12),  // 12: bne t0, x0, 0
            Self.jal(0, 0),  // 16
        ])
        t[11] = t.base
        t[12] = UInt64(Asm.addi(10, 10, 100))
        t[5] = 2
        Self.run(t, retired: 2 * 4 + 1)
        #expect(t[10] == 200)
    }

    @Test func storeOverTheStoreItselfEndsTheSliceAfterIt() throws {
        // sw rewrites its own slot (with the same bits): the loop must not run on from a slot
        // that was just dropped, and the next instruction runs once.
        let store = Asm.s(0, 12, 11, 2)  // sw a2, 0(a1)
        let t = try TestMachine([store, Asm.addi(10, 10, 1), Self.jal(0, 0)])
        t[11] = t.base
        t[12] = UInt64(store)
        _ = t.machine.hart.run(budget: 1)  // decode it first
        t.machine.hart.state.pc = t.base
        let before = t.state.retired
        let ran = t.machine.hart.run(budget: 10)
        #expect(ran == 1 && t.state.retired == before + 1 && t.state.pc == t.base + 4)
        Self.run(t, retired: before + 3)
        #expect(t[10] == 1)
    }

    @Test func aTrapStormStillEndsTheSlice() throws {
        // mtvec points at an illegal instruction: every trap traps again and nothing retires,
        // yet run(budget:) must come back (pause and stop are served between slices).
        let t = try TestMachine([0x0000_0000])
        t.machine.hart.state.mtvec = t.base
        let ran = t.machine.hart.run(budget: 100)
        #expect(ran == 100)  // a hundred traps, each a step
        #expect(t.state.retired == 0)
        #expect(t.state.mcause == 2 && t.state.pc == t.base)
    }

    @Test func opSlotsAreSixteenBytes() {
        // One slot per halfword of every code page: keep them small.
        #expect(MemoryLayout<Op>.stride == 16)
    }

    /// The remapped function of the tests below: VA `function` calls `a0 += 1` on physical page A
    /// or, once s3 (a PTE to page B) is stored at s2 (its PTE), `a0 += 100` on page B. RAM's first
    /// 2 MiB are identity-mapped as a megapage (code and tables); the hart is in S-mode under Sv39
    /// with s1 = `function`, s2 and s3 set. Returns that state, for the caller to finish and set.
    enum RemappedFunction {
        static let root: UInt64 = 0x10000
        static let l1: UInt64 = 0x11000
        static let l0: UInt64 = 0x12000
        static let fl1: UInt64 = 0x13000
        static let pageA: UInt64 = 0x20000
        static let pageB: UInt64 = 0x21000
        static let function: UInt64 = 0x4000_0000
        static let leaf: UInt64 = 0xcf  // V R W X A D

        static func prepare(_ t: TestMachine) throws -> Hart.State {
            let base = t.base
            try t.place([Asm.addi(10, 10, 1), CodeCacheTests.jalr(0, 1)], at: base + pageA)
            try t.place([Asm.addi(10, 10, 100), CodeCacheTests.jalr(0, 1)], at: base + pageB)
            try write(t, ((base + l1) >> 12) << 10 | 1, at: base + root + 8 * ((base >> 30) & 0x1ff))
            try write(t, (base >> 12) << 10 | leaf, at: base + l1 + 8 * ((base >> 21) & 0x1ff))
            try write(t, ((base + fl1) >> 12) << 10 | 1, at: base + root + 8 * ((function >> 30) & 0x1ff))
            try write(t, ((base + l0) >> 12) << 10 | 1, at: base + fl1 + 8 * ((function >> 21) & 0x1ff))
            try write(t, ((base + pageA) >> 12) << 10 | leaf, at: base + l0 + 8 * ((function >> 12) & 0x1ff))
            var s = t.state
            s.priv = .supervisor
            s.satp = (8 << 60) | ((base + root) >> 12)
            s.mtvec = base + 0x800
            s.x[9] = function
            s.x[18] = base + l0 + 8 * ((function >> 12) & 0x1ff)
            s.x[19] = ((base + pageB) >> 12) << 10 | leaf
            return s
        }
    }

    @Test func pageRemappedUnderDecodedCodeRunsTheNewPage() throws {
        // S-mode calls a function at VA 0x40000000 (decoded from physical page A), points the PTE
        // at page B, sfence.vma, and calls it again: B's code must run.
        let t = try TestMachine([
            Self.jalr(1, 9),  // 0: jalr ra, 0(s1)
            Asm.sd(19, 18, 0),  // 4: sd s3, 0(s2)   (the PTE -> page B)
            Self.sfenceVMA,  // 8
            Self.jalr(1, 9),  // 12: jalr ra, 0(s1)
            Self.jal(0, 0),  // 16: j 16
        ])
        t.state = try RemappedFunction.prepare(t)
        Self.run(t, retired: 9)
        #expect(t.state.mcause == 0)
        #expect(t[10] == 101)
        #expect(t.state.pc == t.base + 16)
    }

    @Test func mprvLoadsUseTheTranslationOfMPP() throws {
        // M-mode reads VA 0x40000000 with MPRV (MPP = S): through S's page table, backed by a
        // page holding 42; then without MPRV the same VA is physical and unmapped (access fault).
        let root: UInt64 = 0x10000
        let data: UInt64 = 0x20000
        let t = try TestMachine([
            Asm.ld(10, 11, 0),  // 0: ld a0, 0(a1)   via S's translation
            Asm.csrrw(0, 0x300, 12),  // 4: csrw mstatus, a2 (MPRV off)
            Asm.ld(13, 11, 0),  // 8: ld a3, 0(a1)   bare: access fault
        ])
        let base = t.base
        try Self.write(t, 42, at: base + data)
        let l1: UInt64 = 0x11000
        let l0: UInt64 = 0x12000
        try Self.write(t, ((base + l1) >> 12) << 10 | 1, at: base + root + 8)
        try Self.write(t, ((base + l0) >> 12) << 10 | 1, at: base + l1)
        try Self.write(t, ((base + data) >> 12) << 10 | 0xc7, at: base + l0)  // V R W A D
        var s = t.state
        s.satp = (8 << 60) | ((base + root) >> 12)
        s.mstatus |= Hart.mstatusMPRV | (1 << 11)
        s.mtvec = base + 0x800
        s.x[11] = 0x4000_0000
        s.x[12] = s.mstatus & ~Hart.mstatusMPRV
        t.state = s
        t.step(3)
        #expect(t[10] == 42)
        #expect(t.state.mcause == 5)
        #expect(t.state.mepc == base + 8)
    }
}
