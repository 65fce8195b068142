// The threaded C core (CInterpreterCore) runs exactly what the Swift loop runs: it reads
// Swift's ops and TLB entries by layout and op kinds by number, so both are checked here, and
// seeded random programs of the ops it runs give the same registers, memory, pc and count
// with the core on and off, whatever the slices' budgets.
import CInterpreterCore
import TestBoards
import Testing

@testable import RISCV

@Suite struct ThreadedCoreTests {
    @Test func layoutsMatchTheCore() {
        #expect(MemoryLayout<Op>.stride == 16)
        #expect(MemoryLayout<Op>.offset(of: \Op.kind) == 0)
        #expect(MemoryLayout<Op>.offset(of: \Op.rd) == 1)
        #expect(MemoryLayout<Op>.offset(of: \Op.rs1) == 2)
        #expect(MemoryLayout<Op>.offset(of: \Op.rs2) == 3)
        #expect(MemoryLayout<Op>.offset(of: \Op.len) == 4)
        #expect(MemoryLayout<Op>.offset(of: \Op.offset) == 6)
        #expect(MemoryLayout<Op>.offset(of: \Op.imm) == 8)
        #expect(MemoryLayout<Op>.offset(of: \Op.target) == 12)
        #expect(MemoryLayout<TLBEntry>.stride == 16)
        #expect(MemoryLayout<TLBEntry>.offset(of: \TLBEntry.addend) == 8)
        #expect(MemoryLayout<FetchTLBEntry>.stride == 24)
        #expect(MemoryLayout<FetchTLBEntry>.offset(of: \FetchTLBEntry.ops) == 8)
        #expect(MemoryLayout<FetchTLBEntry>.offset(of: \FetchTLBEntry.host) == 16)
        #expect(Hart.tlbSize == Int(EMU_TLB_SIZE))
    }

    @Test func opKindsAreNumberedAsInTheCore() {
        let kinds: [(OpKind, Int)] = [
            (.undecoded, EMU_OP_UNDECODED), (.pageEnd, EMU_OP_PAGE_END), (.lookup, EMU_OP_LOOKUP),
            (.illegal, EMU_OP_ILLEGAL), (.nop, EMU_OP_NOP), (.lui, EMU_OP_LUI), (.auipc, EMU_OP_AUIPC),
            (.jal, EMU_OP_JAL), (.j, EMU_OP_J), (.jalr, EMU_OP_JALR), (.jr, EMU_OP_JR),
            (.beq, EMU_OP_BEQ), (.bne, EMU_OP_BNE), (.blt, EMU_OP_BLT), (.bge, EMU_OP_BGE),
            (.bltu, EMU_OP_BLTU), (.bgeu, EMU_OP_BGEU),
            (.lb, EMU_OP_LB), (.lh, EMU_OP_LH), (.lw, EMU_OP_LW), (.ld, EMU_OP_LD), (.lbu, EMU_OP_LBU),
            (.lhu, EMU_OP_LHU), (.lwu, EMU_OP_LWU), (.loadDiscard, EMU_OP_LOAD_DISCARD),
            (.sb, EMU_OP_SB), (.sh, EMU_OP_SH), (.sw, EMU_OP_SW), (.sd, EMU_OP_SD),
            (.addi, EMU_OP_ADDI), (.slti, EMU_OP_SLTI), (.sltiu, EMU_OP_SLTIU), (.xori, EMU_OP_XORI),
            (.ori, EMU_OP_ORI), (.andi, EMU_OP_ANDI), (.slli, EMU_OP_SLLI), (.srli, EMU_OP_SRLI),
            (.srai, EMU_OP_SRAI), (.add, EMU_OP_ADD), (.sub, EMU_OP_SUB), (.sll, EMU_OP_SLL),
            (.slt, EMU_OP_SLT), (.sltu, EMU_OP_SLTU), (.xor, EMU_OP_XOR), (.srl, EMU_OP_SRL),
            (.sra, EMU_OP_SRA), (.or, EMU_OP_OR), (.and, EMU_OP_AND),
            (.addiw, EMU_OP_ADDIW), (.slliw, EMU_OP_SLLIW), (.srliw, EMU_OP_SRLIW), (.sraiw, EMU_OP_SRAIW),
            (.addw, EMU_OP_ADDW), (.subw, EMU_OP_SUBW), (.sllw, EMU_OP_SLLW), (.srlw, EMU_OP_SRLW),
            (.sraw, EMU_OP_SRAW), (.mv, EMU_OP_MV), (.li, EMU_OP_LI),
            (.mul, EMU_OP_MUL), (.mulh, EMU_OP_MULH), (.mulhsu, EMU_OP_MULHSU), (.mulhu, EMU_OP_MULHU),
            (.div, EMU_OP_DIV), (.divu, EMU_OP_DIVU), (.rem, EMU_OP_REM), (.remu, EMU_OP_REMU),
            (.mulw, EMU_OP_MULW), (.divw, EMU_OP_DIVW), (.divuw, EMU_OP_DIVUW), (.remw, EMU_OP_REMW),
            (.remuw, EMU_OP_REMUW), (.amo, EMU_OP_AMO),
            (.csrrw, EMU_OP_CSRRW), (.csrrs, EMU_OP_CSRRS), (.csrrc, EMU_OP_CSRRC),
            (.csrrwi, EMU_OP_CSRRWI), (.csrrsi, EMU_OP_CSRRSI), (.csrrci, EMU_OP_CSRRCI),
            (.ecall, EMU_OP_ECALL), (.ebreak, EMU_OP_EBREAK), (.mret, EMU_OP_MRET), (.sret, EMU_OP_SRET),
            (.wfi, EMU_OP_WFI), (.sfenceVMA, EMU_OP_SFENCE_VMA), (.fence, EMU_OP_FENCE), (.fenceI, EMU_OP_FENCE_I),
        ]
        for (kind, number) in kinds { #expect(Int(kind.rawValue) == number, "\(kind)") }
        #expect(kinds.count == EMU_OP_KIND_COUNT)
    }

    /// A random program of the ops the core runs: ALU (I, M, word forms), loads and stores
    /// around x31 (some misaligned: slow paths), forward branches and
    /// jal, a jalr, across two pages, with a few compressed instructions; then `j .`.
    static func program(_ rng: inout SplitMix64) -> [UInt32] {
        var words: [UInt32] = []
        let count = 1400  // past the first 4 KiB page
        func reg() -> UInt32 { UInt32.random(in: 0...12, using: &rng) }
        for index in 0..<count {
            let rd = reg()
            let rs1 = reg()
            let rs2 = reg()
            let imm = Int32.random(in: -2048...2047, using: &rng)
            let left = count - index
            switch Int.random(in: 0..<16, using: &rng) {
            case 0...3:  // OP / OP-32, M included
                let word = Bool.random(using: &rng)
                let forms: [(UInt32, UInt32)] =
                    word
                    ? [(0, 0), (0, 1), (0, 5), (0x20, 0), (0x20, 5), (1, 0), (1, 4), (1, 5), (1, 6), (1, 7)]
                    : (0..<8).flatMap { [(0, $0), (1, $0)] } + [(0x20, 0), (0x20, 5)]
                let (f7, f3) = forms.randomElement(using: &rng)!
                words.append(Asm.r(f7, rs2, rs1, f3, rd, word ? 0x3b : 0x33))
            case 4...6:  // OP-IMM / OP-IMM-32
                let word = Bool.random(using: &rng)
                let f3: UInt32 = word ? [0, 1, 5].randomElement(using: &rng)! : UInt32.random(in: 0...7, using: &rng)
                var i = imm
                if f3 == 1 || f3 == 5 {
                    let shamt = Int32.random(in: 0...(word ? 31 : 63), using: &rng)
                    i = shamt | (f3 == 5 && Bool.random(using: &rng) ? 0x400 : 0)
                }
                words.append(Asm.i(i, rs1, f3, rd, word ? 0x1b : 0x13))
            case 7:  // lui / auipc
                words.append(UInt32.random(in: 0...0xfffff, using: &rng) << 12 | rd << 7 | (Bool.random(using: &rng) ? 0x37 : 0x17))
            case 8, 9:  // loads from the data page (x31), now and then misaligned
                let f3: UInt32 = [0, 1, 2, 3, 4, 5, 6].randomElement(using: &rng)!
                words.append(Asm.i(Int32.random(in: 0...255, using: &rng), 31, f3, rd, 0x03))
            case 10:  // stores to the data page
                words.append(Asm.s(Int32.random(in: 0...255, using: &rng), rs2, 31, UInt32.random(in: 0...3, using: &rng)))
            case 11, 12:  // forward branches, within the program
                let reach = Int32(min(left - 1, 40))
                guard reach >= 1 else { words.append(Asm.nop); continue }
                let f3: UInt32 = [0, 1, 4, 5, 6, 7].randomElement(using: &rng)!
                words.append(CodeCacheTests.b(f3, rs1, rs2, 4 * Int32.random(in: 1...reach, using: &rng)))
            case 13:  // jal forward, some across the page boundary
                let reach = Int32(min(left - 1, 600))
                guard reach >= 1 else { words.append(Asm.nop); continue }
                words.append(CodeCacheTests.jal(rd, 4 * Int32.random(in: 1...reach, using: &rng)))
            case 14:  // two compressed: c.addi rd, imm; c.mv rd, rs
                let crd = UInt32.random(in: 1...12, using: &rng)
                let cimm = UInt32.random(in: 0...63, using: &rng)
                let caddi = (cimm >> 5 & 1) << 12 | crd << 7 | (cimm & 0x1f) << 2 | 0x1
                let cmv = 0x8002 | crd << 7 | UInt32.random(in: 1...12, using: &rng) << 2
                words.append(cmv << 16 | caddi)
            default:  // jalr to the next instruction through x30 (set by auipc just before)
                words.append(UInt32(0) << 12 | 30 << 7 | 0x17)  // auipc x30, 0
                words.append(Asm.i(8, 30, 0, rd, 0x67))  // jalr rd, 8(x30)
            }
        }
        words.append(CodeCacheTests.jal(0, 0))
        return words
    }

    /// The state after running `program` in slices of the given budgets.
    static func run(_ words: [UInt32], threaded: Bool, budgets: [Int], seed: UInt64) throws -> (Hart.State, [UInt8]) {
        let t = try TestMachine(words)
        t.machine.hart.usesThreadedCore = threaded
        var rng = SplitMix64(seed: seed)
        for r in 1...12 { t[r] = rng.next() >> UInt64.random(in: 0...63, using: &rng) }
        t[30] = t.base
        t[31] = t.base + 0x10000
        try t.machine.ram.write((0..<512).map { _ in UInt8.random(in: 0...255, using: &rng) }, at: t.base + 0x10000)
        for budget in budgets { _ = t.machine.hart.run(budget: budget) }
        return (t.state, t.machine.ram.read(t.base + 0x10000, count: 512) ?? [])
    }

    @Test(arguments: 0..<32 as Range<UInt64>)
    func randomProgramsRunAsInTheSwiftLoop(seed: UInt64) throws {
        var rng = SplitMix64(seed: 0x7468_7265_6164 ^ seed)
        let words = Self.program(&rng)
        let budgets = (0..<60).map { _ in Int.random(in: 1...80, using: &rng) } + [5000]
        let reference = try Self.run(words, threaded: false, budgets: budgets, seed: seed)
        let threaded = try Self.run(words, threaded: true, budgets: budgets, seed: seed)
        #expect(threaded.0 == reference.0)
        #expect(threaded.0.retired > 500)
        #expect(threaded.1 == reference.1)
    }
}
