// Instruction-level checks of the parts that are easy to get wrong:
// M-extension edge cases (unprivileged spec table 7.1), word forms, AMOs,
// LR/SC and misaligned accesses.
import Testing

@testable import RISCV

@Suite struct MExtensionTests {
    /// Runs one R-type M instruction a0 = a1 op a2.
    func m(_ f3: UInt32, _ a: UInt64, _ b: UInt64, word: Bool = false) throws -> UInt64 {
        let t = try TestMachine([Asm.mext(f3, 10, 11, 12, word: word)])
        t[11] = a
        t[12] = b
        t.step(1)
        return t[10]
    }

    let minInt = UInt64(bitPattern: Int64.min)
    let minus1 = UInt64.max

    @Test func divisionByZero() throws {
        #expect(try m(4, 42, 0) == .max)  // div
        #expect(try m(5, 42, 0) == .max)  // divu
        #expect(try m(6, 42, 0) == 42)  // rem
        #expect(try m(7, 42, 0) == 42)  // remu
        #expect(try m(4, 42, 0, word: true) == .max)  // divw
        #expect(try m(5, 42, 0, word: true) == .max)  // divuw
        #expect(try m(6, 0xffff_ffff_8000_0000, 0, word: true) == 0xffff_ffff_8000_0000)  // remw
        #expect(try m(7, 0x1_8000_0000, 0, word: true) == 0xffff_ffff_8000_0000)  // remuw sign-extends
    }

    @Test func signedOverflow() throws {
        #expect(try m(4, minInt, minus1) == minInt)  // div
        #expect(try m(6, minInt, minus1) == 0)  // rem
        #expect(try m(4, 0x8000_0000, minus1, word: true) == 0xffff_ffff_8000_0000)  // divw
        #expect(try m(6, 0x8000_0000, minus1, word: true) == 0)  // remw
    }

    @Test func signsAndRounding() throws {
        #expect(try m(4, UInt64(bitPattern: -7), 2) == UInt64(bitPattern: -3))  // toward zero
        #expect(try m(6, UInt64(bitPattern: -7), 2) == UInt64(bitPattern: -1))  // sign of dividend
        #expect(try m(5, UInt64(bitPattern: -7), 2) == UInt64.max / 2 - 3)
    }

    @Test func highMultiplies() throws {
        #expect(try m(1, minus1, minus1) == 0)  // mulh(-1, -1)
        #expect(try m(3, minus1, minus1) == minus1 - 1)  // mulhu
        #expect(try m(2, minus1, minus1) == minus1)  // mulhsu(-1, 2^64-1) = -(2^64-1) -> high -1
        #expect(try m(2, 2, minus1) == 1)  // mulhsu(2, 2^64-1)
        #expect(try m(1, minInt, minInt) == 0x4000_0000_0000_0000)  // mulh
        #expect(try m(0, 0x1_0000_0001, 0xffff_ffff, word: true) == 0xffff_ffff_ffff_ffff)  // mulw
    }
}

@Suite struct AtomicTests {
    @Test func amoaddWordSignExtendsAndWraps() throws {
        let t = try TestMachine([Asm.amo(0x00, 2, 10, 11, 12)])
        let addr = t.base + 0x1000
        try t.machine.ram.write([0xff, 0xff, 0xff, 0x7f], at: addr)
        t[11] = addr
        t[12] = 1
        t.step(1)
        #expect(t[10] == 0x7fff_ffff)
        #expect(t.machine.ram.read(addr, count: 4) == [0, 0, 0, 0x80])
    }

    @Test func amomaxAndMinu() throws {
        let t = try TestMachine([Asm.amo(0x14, 3, 10, 11, 12), Asm.amo(0x18, 3, 13, 11, 14)])
        let addr = t.base + 0x1000
        t[11] = addr
        t[12] = UInt64(bitPattern: -5)  // amomax(0, -5) keeps 0
        t[14] = 3  // amominu(0, 3) keeps 0
        t.step(2)
        #expect(t[10] == 0 && t[13] == 0)
        #expect(t.machine.ram.read(addr, count: 8) == [UInt8](repeating: 0, count: 8))
    }

    @Test func loadReservedStoreConditional() throws {
        // lr.d a0,(a1); sc.d a2,a3,(a1); sc.d a4,a3,(a1) (no reservation left)
        let t = try TestMachine([Asm.amo(0x02, 3, 10, 11, 0), Asm.amo(0x03, 3, 12, 11, 13), Asm.amo(0x03, 3, 14, 11, 13)])
        t[11] = t.base + 0x1000
        t[13] = 99
        t.step(3)
        #expect(t[12] == 0)
        #expect(t[14] == 1)
        #expect(t.machine.ram.read(t.base + 0x1000, count: 1) == [99])
    }

    @Test func misalignedAMORaisesStoreMisaligned() throws {
        let t = try TestMachine([Asm.amo(0x00, 3, 10, 11, 12)])
        t[11] = t.base + 0x1004
        t.step(1)
        #expect(t.state.mcause == 6)
        #expect(t.state.mtval == t.base + 0x1004)
    }
}

@Suite struct MemoryAccessTests {
    @Test func misalignedLoadAcrossPages() throws {
        let t = try TestMachine([Asm.ld(10, 11, 0), Asm.sd(10, 11, 8)])
        let addr = t.base + 0x1ffd
        try t.machine.ram.write([1, 2, 3, 4, 5, 6, 7, 8], at: addr)
        t[11] = addr
        t.step(2)
        #expect(t[10] == 0x0807_0605_0403_0201)
        #expect(t.machine.ram.read(addr + 8, count: 8) == [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(t.state.mcause == 0)
    }

    @Test func selfModifyingCodeIsSeen() throws {
        // sw a2, 8(a1) overwrites the instruction at +8 (addi a0,a0,1 -> addi a0,a0,7)
        let t = try TestMachine([Asm.s(8, 12, 11, 2), Asm.nop, Asm.addi(10, 10, 1)])
        t[11] = t.base
        t[12] = UInt64(Asm.addi(10, 10, 7))
        // Decode the target first so the cache holds the old instruction.
        t.step(3)
        #expect(t[10] == 7)
    }

    @Test func loadFromUnmappedAddressIsAccessFault() throws {
        let t = try TestMachine([Asm.ld(10, 11, 0)])
        t[11] = 0x4000_0000
        t.step(1)
        #expect(t.state.mcause == 5)
        #expect(t.state.mtval == 0x4000_0000)
    }
}
