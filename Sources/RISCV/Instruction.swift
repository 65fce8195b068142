// A decoded instruction: what the interpreter's switch runs. Plain 16-byte
// values with no references, decoded once per code page slot (TinyEMU and
// rvemu style), so the hot loop never looks at instruction bits again. Each
// carries its offset in the page, so the loop keeps no pc of its own (pc =
// page + offset), and an in-page branch or jump its target slot.

@usableFromInline
enum OpKind: UInt8, Sendable {
    case undecoded = 0  // slot not decoded yet (page caches start zeroed)
    case pageEnd  // sentinel after a page's last slot: pc = page + offset, look it up
    case lookup  // sentinel: look up the pc a jump left in the loop's `pc`
    case illegal  // imm = the instruction bits (reported in xtval)
    case nop
    // RV64I
    case lui, auipc, jal, j, jalr, jr
    case beq, bne, blt, bge, bltu, bgeu
    case lb, lh, lw, ld, lbu, lhu, lwu
    case loadDiscard  // load with rd = x0: only its side effects/faults; rs2 = funct3
    case sb, sh, sw, sd
    case addi, slti, sltiu, xori, ori, andi, slli, srli, srai
    case add, sub, sll, slt, sltu, xor, srl, sra, or, and
    case addiw, slliw, srliw, sraiw
    case addw, subw, sllw, srlw, sraw
    case mv, li  // c.mv / c.li style: rd = rs1 / rd = imm
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
    /// Byte offset of the instruction in its page (0x1000 and up for the sentinels after it).
    @usableFromInline var offset: UInt16
    @usableFromInline var imm: Int32
    /// Branches and jal/j: the slot of a target in the same page, or -1 (look it up).
    @usableFromInline var target: Int32

    @inline(__always)
    init(_ kind: OpKind, rd: UInt32 = 0, rs1: UInt32 = 0, rs2: UInt32 = 0, imm: Int32 = 0, len: UInt8 = 4) {
        self.kind = kind
        self.rd = UInt8(truncatingIfNeeded: rd)
        self.rs1 = UInt8(truncatingIfNeeded: rs1)
        self.rs2 = UInt8(truncatingIfNeeded: rs2)
        self.len = len
        self.offset = 0
        self.imm = imm
        self.target = -1
    }

    // Operand accessors for the interpreter, read where used (not hoisted
    // into registers for every instruction).
    @inline(__always) var d: Int { Int(truncatingIfNeeded: rd) }
    @inline(__always) var s1: Int { Int(truncatingIfNeeded: rs1) }
    @inline(__always) var s2: Int { Int(truncatingIfNeeded: rs2) }
    @inline(__always) var i: UInt64 { UInt64(bitPattern: Int64(imm)) }

    static let undecoded = Op(.undecoded, len: 0)
    static let lookup = Op(.lookup, len: 0)

    /// An undecoded slot at byte `offset` of its page.
    @inline(__always)
    static func undecoded(at offset: Int) -> Op {
        var op = Op(.undecoded, len: 0)
        op.offset = UInt16(truncatingIfNeeded: offset)
        return op
    }

    /// The sentinel at byte `offset` past a page's instructions (0x1000, or 0x1002 after an
    /// instruction that straddles into the next page).
    static func pageEnd(at offset: Int) -> Op {
        var op = Op(.pageEnd, len: 0)
        op.offset = UInt16(truncatingIfNeeded: offset)
        return op
    }

    /// `self` placed at byte `offset` of its page: jal, j and branches whose target lies in the
    /// same page get its slot (the same for every virtual address the page is mapped at).
    func placed(at offset: Int, straddling: Bool = false) -> Op {
        var op = self
        op.offset = UInt16(truncatingIfNeeded: offset)
        switch kind {
        case .jal, .j, .beq, .bne, .blt, .bge, .bltu, .bgeu:
            let to = offset + Int(imm)
            if !straddling && to >= 0 && to < GuestRAM.pageSize { op.target = Int32(to >> 1) }
        default: break
        }
        return op
    }

    static func illegal(_ bits: UInt32, len: UInt8) -> Op {
        Op(.illegal, imm: Int32(bitPattern: bits), len: len)
    }
}

/// The interpreter's view of the op in a slot: each field is loaded where it is used.
@usableFromInline
struct OpRef {
    let slot: UnsafeMutablePointer<Op>
    @inline(__always) init(_ slot: UnsafeMutablePointer<Op>) { self.slot = slot }

    @inline(__always) var kind: OpKind { slot.pointee.kind }
    @inline(__always) var d: Int { Int(truncatingIfNeeded: slot.pointee.rd) }
    @inline(__always) var s1: Int { Int(truncatingIfNeeded: slot.pointee.rs1) }
    @inline(__always) var s2: Int { Int(truncatingIfNeeded: slot.pointee.rs2) }
    @inline(__always) var i: UInt64 { UInt64(bitPattern: Int64(slot.pointee.imm)) }
    @inline(__always) var len: UInt8 { slot.pointee.len }
    @inline(__always) var offset: UInt16 { slot.pointee.offset }
    @inline(__always) var target: Int32 { slot.pointee.target }
    /// A copy, for slow paths that take the whole op.
    @inline(__always) var value: Op { slot.pointee }
}
