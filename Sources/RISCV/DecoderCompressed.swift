// Decoding of the "C" extension (RISC-V unprivileged spec, ch. 16, RV64C
// listing in table 16.5-16.7): every compressed instruction expands to the
// same `Op` as its 32-bit form, with len = 2. Reserved encodings and the
// F/D forms (this hart has no FPU) are illegal; HINTs become nop.

extension Decoder {
    static func decodeCompressed(_ h: UInt16) -> Op {
        let i = UInt32(h)
        let bad = Op.illegal(i, len: 2)
        let rdFull = (i >> 7) & 0x1f
        let rs2Full = (i >> 2) & 0x1f
        let rdP = ((i >> 2) & 7) + 8  // rd'/rs2' in bits 4:2
        let rs1P = ((i >> 7) & 7) + 8  // rs1'/rd' in bits 9:7
        let f3 = i >> 13
        // 6-bit signed immediate imm[5] = bit 12, imm[4:0] = bits 6:2.
        let imm6 = (Int32(bitPattern: (i >> 12 & 1) << 31) >> 26) | Int32((i >> 2) & 0x1f)

        func op(_ k: OpKind, rd: UInt32 = 0, rs1: UInt32 = 0, rs2: UInt32 = 0, imm: Int32 = 0) -> Op {
            Op(k, rd: rd, rs1: rs1, rs2: rs2, imm: imm, len: 2)
        }
        func alu(_ k: OpKind, rd: UInt32, rs1: UInt32 = 0, rs2: UInt32 = 0, imm: Int32 = 0) -> Op {
            rd == 0 ? op(.nop) : op(k, rd: rd, rs1: rs1, rs2: rs2, imm: imm)
        }

        switch (i & 3, f3) {
        // Quadrant 0
        case (0, 0):  // c.addi4spn
            let imm = ((i >> 7) & 0x30) | ((i >> 1) & 0x3c0) | ((i >> 4) & 4) | ((i >> 2) & 8)
            guard imm != 0 else { return bad }
            return op(.addi, rd: rdP, rs1: 2, imm: Int32(imm))
        case (0, 2):  // c.lw
            let imm = ((i >> 7) & 0x38) | ((i >> 4) & 4) | ((i << 1) & 0x40)
            return op(.lw, rd: rdP, rs1: rs1P, imm: Int32(imm))
        case (0, 3):  // c.ld
            let imm = ((i >> 7) & 0x38) | ((i << 1) & 0xc0)
            return op(.ld, rd: rdP, rs1: rs1P, imm: Int32(imm))
        case (0, 6):  // c.sw
            let imm = ((i >> 7) & 0x38) | ((i >> 4) & 4) | ((i << 1) & 0x40)
            return op(.sw, rs1: rs1P, rs2: rdP, imm: Int32(imm))
        case (0, 7):  // c.sd
            let imm = ((i >> 7) & 0x38) | ((i << 1) & 0xc0)
            return op(.sd, rs1: rs1P, rs2: rdP, imm: Int32(imm))
        case (0, _):  // c.fld, c.fsd (no D), reserved
            return bad

        // Quadrant 1
        case (1, 0):  // c.addi / c.nop
            return alu(.addi, rd: rdFull, rs1: rdFull, imm: imm6)
        case (1, 1):  // c.addiw (rd = 0 reserved)
            guard rdFull != 0 else { return bad }
            return op(.addiw, rd: rdFull, rs1: rdFull, imm: imm6)
        case (1, 2):  // c.li
            return alu(.li, rd: rdFull, imm: imm6)
        case (1, 3):
            if rdFull == 2 {  // c.addi16sp
                let raw = ((i >> 3) & 0x200) | ((i >> 2) & 0x10) | ((i << 1) & 0x40) | ((i << 4) & 0x180) | ((i << 3) & 0x20)
                guard raw != 0 else { return bad }
                let imm = Int32(bitPattern: raw << 22) >> 22
                return op(.addi, rd: 2, rs1: 2, imm: imm)
            }
            guard imm6 != 0 else { return bad }  // c.lui nzimm = 0 reserved
            return alu(.lui, rd: rdFull, imm: imm6 << 12)
        case (1, 4):
            switch (i >> 10) & 3 {
            case 0:  // c.srli (RV64: shamt[5] = bit 12)
                return op(.srli, rd: rs1P, rs1: rs1P, imm: Int32(((i >> 7) & 0x20) | ((i >> 2) & 0x1f)))
            case 1:  // c.srai
                return op(.srai, rd: rs1P, rs1: rs1P, imm: Int32(((i >> 7) & 0x20) | ((i >> 2) & 0x1f)))
            case 2:  // c.andi
                return op(.andi, rd: rs1P, rs1: rs1P, imm: imm6)
            default:
                let k: OpKind
                switch ((i >> 12) & 1, (i >> 5) & 3) {
                case (0, 0): k = .sub
                case (0, 1): k = .xor
                case (0, 2): k = .or
                case (0, 3): k = .and
                case (1, 0): k = .subw
                case (1, 1): k = .addw
                default: return bad
                }
                return op(k, rd: rs1P, rs1: rs1P, rs2: rdP)
            }
        case (1, 5):  // c.j
            let raw =
                ((i >> 1) & 0x800) | ((i >> 7) & 0x10) | ((i >> 1) & 0x300) | ((i << 2) & 0x400)
                | ((i >> 1) & 0x40) | ((i << 1) & 0x80) | ((i >> 2) & 0xe) | ((i << 3) & 0x20)
            return op(.j, imm: Int32(bitPattern: raw << 20) >> 20)
        case (1, 6), (1, 7):  // c.beqz, c.bnez
            let raw = ((i >> 4) & 0x100) | ((i >> 7) & 0x18) | ((i << 1) & 0xc0) | ((i >> 2) & 6) | ((i << 3) & 0x20)
            return op(f3 == 6 ? .beq : .bne, rs1: rs1P, rs2: 0, imm: Int32(bitPattern: raw << 23) >> 23)

        // Quadrant 2
        case (2, 0):  // c.slli
            return alu(.slli, rd: rdFull, rs1: rdFull, imm: Int32(((i >> 7) & 0x20) | ((i >> 2) & 0x1f)))
        case (2, 2):  // c.lwsp
            guard rdFull != 0 else { return bad }
            let imm = ((i >> 7) & 0x20) | ((i >> 2) & 0x1c) | ((i << 4) & 0xc0)
            return op(.lw, rd: rdFull, rs1: 2, imm: Int32(imm))
        case (2, 3):  // c.ldsp
            guard rdFull != 0 else { return bad }
            let imm = ((i >> 7) & 0x20) | ((i >> 2) & 0x18) | ((i << 4) & 0x1c0)
            return op(.ld, rd: rdFull, rs1: 2, imm: Int32(imm))
        case (2, 4):
            if (i >> 12) & 1 == 0 {
                if rs2Full == 0 {  // c.jr
                    guard rdFull != 0 else { return bad }
                    return op(.jr, rs1: rdFull)
                }
                return alu(.mv, rd: rdFull, rs1: rs2Full)  // c.mv
            }
            if rs2Full == 0 {
                if rdFull == 0 { return op(.ebreak) }
                return op(.jalr, rd: 1, rs1: rdFull)  // c.jalr
            }
            return alu(.add, rd: rdFull, rs1: rdFull, rs2: rs2Full)  // c.add
        case (2, 6):  // c.swsp
            let imm = ((i >> 7) & 0x3c) | ((i >> 1) & 0xc0)
            return op(.sw, rs1: 2, rs2: rs2Full, imm: Int32(imm))
        case (2, 7):  // c.sdsp
            let imm = ((i >> 7) & 0x38) | ((i >> 1) & 0x1c0)
            return op(.sd, rs1: 2, rs2: rs2Full, imm: Int32(imm))
        default:  // c.fldsp, c.fsdsp
            return bad
        }
    }
}
