// The JIT (CInterpreterCore's jit_*.c) runs exactly what the threaded core and the Swift loop
// run: seeded random programs with loops, loads and stores (TLB misses, misaligned ones,
// some across a page boundary) and jumps within and across pages, in random slices so budgets
// end inside blocks, give the same state and memory with the JIT on, off, and Swift alone; and
// a store into a compiled block or a page remapped under one runs the new code.
import CInterpreterCore
import TestBoards
import Testing

@testable import RISCV

@Suite struct JITTests {
    /// The machine's JIT compiling every block on its first entry; nil where there is no JIT.
    @discardableResult
    static func compileAtOnce(_ t: TestMachine) -> OpaquePointer? {
        guard let jit = t.machine.ram.jit else { return nil }
        emu_jit_set_hot_threshold(jit, 1)
        return jit
    }

    /// ThreadedCoreTests' random ops, run four times over by an outer loop (x29), after an
    /// inner loop (x28) with a load, a store and a load that crosses into the next page.
    static func program(_ rng: inout SplitMix64) -> [UInt32] {
        var words: [UInt32] = [
            Asm.addi(28, 0, 5),  // 0: li x28, 5
            CodeCacheTests.add(1, 1, 2),  // 4: add x1, x1, x2
            Asm.lw(3, 31, Int32.random(in: 0...64, using: &rng)),  // 8: lw x3, n(x31)
            Asm.s(Int32.random(in: 0...64, using: &rng), 1, 31, 3),  // 12: sd x1, n(x31)
            Asm.ld(4, 31, 0x7fd),  // 16: ld x4, 0x7fd(x31): x31 + 0x800 is 3 bytes before a page end
            Asm.addi(28, 28, -1),  // 20
            CodeCacheTests.b(1, 28, 0, -20),  // 24: bne x28, x0, 4
        ]
        var body = ThreadedCoreTests.program(&rng)
        body.removeLast()  // its `j .`: jumps to it now land on the loop's end
        words += body
        let back = Int32(words.count) * 4
        words += [
            Asm.addi(29, 29, -1),
            CodeCacheTests.b(0, 29, 0, 8),  // beq x29, x0, +8
            CodeCacheTests.jal(0, -(back + 8)),  // back to 0
            CodeCacheTests.jal(0, 0),
        ]
        return words
    }

    enum Engine { case swift, threaded, jit }

    /// The state, the data memory, and the JIT's blocks compiled and buffer flushes.
    static func run(
        _ words: [UInt32], _ engine: Engine, budgets: [Int], seed: UInt64, codeLimit: Int? = nil
    ) throws -> (Hart.State, [UInt8], UInt64, UInt64) {
        let t = try TestMachine(words)
        t.machine.hart.usesThreadedCore = engine != .swift
        t.machine.hart.usesJIT = engine == .jit
        let jit = compileAtOnce(t)
        if let jit, let codeLimit { emu_jit_limit_code(jit, codeLimit) }
        var rng = SplitMix64(seed: seed)
        for r in 1...12 { t[r] = rng.next() >> UInt64.random(in: 0...63, using: &rng) }
        t[29] = 4
        t[30] = t.base
        t[31] = t.base + 0x10800
        try t.machine.ram.write((0..<0x2000).map { _ in UInt8.random(in: 0...255, using: &rng) }, at: t.base + 0x10000)
        for budget in budgets { _ = t.machine.hart.run(budget: budget) }
        let compiled = jit.map { emu_jit_blocks_compiled($0) } ?? 0
        let flushes = jit.map { emu_jit_flushes($0) } ?? 0
        return (t.state, t.machine.ram.read(t.base + 0x10000, count: 0x2000) ?? [], compiled, flushes)
    }

    @Test(arguments: 0..<48 as Range<UInt64>)
    func randomProgramsRunAsWithoutTheJIT(seed: UInt64) throws {
        var rng = SplitMix64(seed: 0x6a69_7400 ^ seed)
        let words = Self.program(&rng)
        let budgets = (0..<200).map { _ in Int.random(in: 1...(seed % 2 == 0 ? 80 : 600), using: &rng) } + [40000]
        let swift = try Self.run(words, .swift, budgets: budgets, seed: seed)
        let threaded = try Self.run(words, .threaded, budgets: budgets, seed: seed)
        let jit = try Self.run(words, .jit, budgets: budgets, seed: seed)
        #expect(threaded.0 == swift.0)
        #expect(threaded.1 == swift.1)
        #expect(jit.0 == swift.0)
        #expect(jit.1 == swift.1)
        #expect(jit.0.retired > 2000, "mcause \(jit.0.mcause) mepc \(jit.0.mepc &- 0x8000_0000)")
        #expect(jit.0.pc == swift.0.pc)
        if try TestMachine([]).machine.ram.jit != nil { #expect(jit.2 > 5) }
    }

    @Test(arguments: 0..<8 as Range<UInt64>)
    func aFullCodeBufferStartsOverExactly(seed: UInt64) throws {
        // A code buffer of one page past its shared code: it fills over and over while blocks chain into each other.
        var rng = SplitMix64(seed: 0x6675_6c6c ^ seed)
        let words = Self.program(&rng)
        let budgets = (0..<200).map { _ in Int.random(in: 1...300, using: &rng) } + [40000]
        let swift = try Self.run(words, .swift, budgets: budgets, seed: seed)
        let jit = try Self.run(words, .jit, budgets: budgets, seed: seed, codeLimit: 0)
        #expect(jit.0 == swift.0)
        #expect(jit.1 == swift.1)
        // (A program that settles into a short loop early compiles too little to fill it.)
        if jit.2 > 100 { #expect(jit.3 > 0, "\(jit.2) blocks, \(jit.3) flushes") }
    }

    @Test func storeIntoTheRunningCompiledBlockIsSeen() throws {
        // CodeCacheTests' self-patching loop, compiled: every round's store rewrites the fourth
        // instruction of the block being run, with a new immediate each time.
        let rounds = 20
        let t = try TestMachine([
            Asm.s(12, 12, 11, 2),  // 0: sw a2, 12(a1)
            CodeCacheTests.add(12, 12, 13),  // 4: add a2, a2, a3   (next immediate + 1)
            Asm.nop,  // 8
            Asm.addi(10, 10, 0),  // 12: addi a0, a0, <patched>
            Asm.addi(5, 5, -1),  // 16: addi t0, t0, -1
            CodeCacheTests.b(1, 5, 0, -20),  // 20: bne t0, x0, 0
            CodeCacheTests.jal(0, 0),  // 24: j 24
        ])
        let jit = Self.compileAtOnce(t)
        t[11] = t.base
        t[12] = UInt64(Asm.addi(10, 10, 7))
        t[13] = 1 << 20
        t[5] = UInt64(rounds)
        CodeCacheTests.run(t, retired: UInt64(rounds * 6 + 2))
        #expect(t[10] == UInt64(7 * rounds + rounds * (rounds - 1) / 2))
        #expect(t.state.pc == t.base + 24)
        #expect(t.state.retired == UInt64(rounds * 6 + 2))
        if let jit { #expect(emu_jit_blocks_compiled(jit) > 0) }
    }

    @Test func storeIntoACompiledBlockAheadIsSeen() throws {
        // A loop (compiled once it ran) rewrites an instruction of the block it jumps to next.
        let t = try TestMachine([
            Asm.addi(10, 10, 1),  // 0: addi a0, a0, 1 -> addi a0, a0, 100 from round 3 on
            Asm.addi(5, 5, -1),  // 4: addi t0, t0, -1
            CodeCacheTests.b(0, 5, 6, 8),  // 8: beq t0, t1, 16 (round 3: patch)
            CodeCacheTests.b(1, 5, 0, -12),  // 12: bne t0, x0, 0
            Asm.s(0, 12, 11, 2),  // 16: sw a2, 0(a1)
            CodeCacheTests.b(1, 5, 0, -20),  // 20: bne t0, x0, 0
            CodeCacheTests.jal(0, 0),  // 24
        ])
        let jit = Self.compileAtOnce(t)
        t[11] = t.base
        t[12] = UInt64(Asm.addi(10, 10, 100))
        t[5] = 8
        t[6] = 5
        // Rounds 1-2 and 4-7: addi, addi, beq, bne; round 3: addi, addi, beq, sw, bne; round 8
        // falls through both bne and runs the store once more (same bits); then j.
        CodeCacheTests.run(t, retired: 2 * 4 + 5 + 4 * 4 + 6 + 1)
        #expect(t[10] == 3 + 5 * 100)
        #expect(t.state.pc == t.base + 24)
        if let jit { #expect(emu_jit_blocks_compiled(jit) > 0) }
    }

    @Test func pageRemappedUnderACompiledBlockRunsTheNewPage() throws {
        // CodeCacheTests' remapped function, called five times before the remap (so compiled)
        // and five times after: B's code must run after sfence.vma, not A's compiled block.
        let t = try TestMachine([
            CodeCacheTests.jalr(1, 9),  // 0: jalr ra, 0(s1)
            Asm.addi(5, 5, -1),  // 4: addi t0, t0, -1
            CodeCacheTests.b(1, 5, 0, -8),  // 8: bne t0, x0, 0
            Asm.sd(19, 18, 0),  // 12: sd s3, 0(s2)   (the PTE -> page B)
            CodeCacheTests.sfenceVMA,  // 16
            CodeCacheTests.jalr(1, 9),  // 20: jalr ra, 0(s1)
            Asm.addi(6, 6, -1),  // 24: addi t1, t1, -1
            CodeCacheTests.b(1, 6, 0, -8),  // 28: bne t1, x0, 20
            CodeCacheTests.jal(0, 0),  // 32: j 32
        ])
        let jit = Self.compileAtOnce(t)
        var s = try CodeCacheTests.RemappedFunction.prepare(t)
        s.x[5] = 5
        s.x[6] = 5
        t.state = s
        CodeCacheTests.run(t, retired: 5 * 5 + 2 + 5 * 5 + 1)
        #expect(t.state.mcause == 0)
        #expect(t[10] == 5 + 500)
        #expect(t.state.pc == t.base + 32)
        if let jit { #expect(emu_jit_blocks_compiled(jit) > 0) }
    }

    @Test func theJITIsThereOnX86_64Linux() throws {
        #if arch(x86_64) && os(Linux)
            #expect(try TestMachine([]).machine.ram.jit != nil)
        #endif
    }
}
