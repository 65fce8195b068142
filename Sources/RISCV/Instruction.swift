// A decoded instruction: what the interpreter's switch runs. Plain 12-byte
// values with no references, decoded once per code page slot (TinyEMU and
// rvemu style), so the hot loop never looks at instruction bits again.

@usableFromInline
enum OpKind: UInt8, Sendable {
    case undecoded = 0   // slot not decoded yet (page caches start zeroed)
    case pageEnd         // sentinel after a page's last slot, or "look the pc up again"
    case illegal         // imm = the instruction bits (reported in xtval)
    case nop
    // RV64I
    case lui, auipc, jal, j, jalr, jr
    case beq, bne, blt, bge, bltu, bgeu
    case lb, lh, lw, ld, lbu, lhu, lwu
    case loadDiscard     // load with rd = x0: only its side effects/faults; rs2 = funct3
    case sb, sh, sw, sd
    case addi, slti, sltiu, xori, ori, andi, slli, srli, srai
    case add, sub, sll, slt, sltu, xor, srl, sra, or, and
    case addiw, slliw, srliw, sraiw
    case addw, subw, sllw, srlw, sraw
    case mv, li          // c.mv / c.li style: rd = rs1 / rd = imm
    // M
    case mul, mulh, mulhsu, mulhu, div, divu, rem, remu
    case mulw, divw, divuw, remw, remuw
    // A: rs2 field as usual; imm = funct5 | (width 3 = D) << 8
    case amo
    // Zicsr: imm = CSR number; rs1 = register or 5-bit immediate
    case csrrw, csrrs, csrrc, csrrwi, csrrsi, csrrci
    // System
    case ecall, ebreak, mret, sret, wfi, sfenceVMA, fence, fenceI
}

@usableFromInline
struct Op: Sendable {
    @usableFromInline var kind: OpKind
    @usableFromInline var rd: UInt8
    @usableFromInline var rs1: UInt8
    @usableFromInline var rs2: UInt8
    /// Instruction length in bytes (2 or 4): the pc increment.
    @usableFromInline var len: UInt8
    @usableFromInline var imm: Int32

    @inline(__always)
    init(_ kind: OpKind, rd: UInt32 = 0, rs1: UInt32 = 0, rs2: UInt32 = 0, imm: Int32 = 0, len: UInt8 = 4) {
        self.kind = kind
        self.rd = UInt8(truncatingIfNeeded: rd)
        self.rs1 = UInt8(truncatingIfNeeded: rs1)
        self.rs2 = UInt8(truncatingIfNeeded: rs2)
        self.len = len
        self.imm = imm
    }

    // Operand accessors for the interpreter, read where used (not hoisted
    // into registers for every instruction).
    @inline(__always) var d: Int { Int(truncatingIfNeeded: rd) }
    @inline(__always) var s1: Int { Int(truncatingIfNeeded: rs1) }
    @inline(__always) var s2: Int { Int(truncatingIfNeeded: rs2) }
    @inline(__always) var i: UInt64 { UInt64(bitPattern: Int64(imm)) }

    static let undecoded = Op(.undecoded, len: 0)
    static let pageEnd = Op(.pageEnd, len: 0)

    static func illegal(_ bits: UInt32, len: UInt8) -> Op {
        Op(.illegal, imm: Int32(bitPattern: bits), len: len)
    }
}
