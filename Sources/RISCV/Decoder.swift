// Decoding of 32-bit instructions (RISC-V unprivileged spec, ch. 2 "RV32I",
// ch. 5 "RV64I", ch. 7 "M", ch. 8 "A", ch. 9-10 "Zicsr"/"Zifencei" and the
// privileged spec's instruction listing). Writes to x0 are folded here, so the
// interpreter never tests rd: ALU ops with rd = 0 become `nop`, loads become
// `loadDiscard`, jal/jalr become j/jr.

enum Decoder {
    @inline(__always) static func immI(_ i: UInt32) -> Int32 { Int32(bitPattern: i) >> 20 }
    @inline(__always) static func immS(_ i: UInt32) -> Int32 {
        ((Int32(bitPattern: i) >> 25) << 5) | Int32((i >> 7) & 0x1f)
    }
    @inline(__always) static func immB(_ i: UInt32) -> Int32 {
        let sign = (Int32(bitPattern: i) >> 31) << 12
        return sign | Int32(((i >> 7) & 1) << 11) | Int32(((i >> 25) & 0x3f) << 5) | Int32(((i >> 8) & 0xf) << 1)
    }
    @inline(__always) static func immJ(_ i: UInt32) -> Int32 {
        let sign = (Int32(bitPattern: i) >> 31) << 20
        return sign | Int32(i & 0xff000) | Int32(((i >> 20) & 1) << 11) | Int32(((i >> 21) & 0x3ff) << 1)
    }

    static func decode(_ i: UInt32) -> Op {
        if i & 3 != 3 { return decodeCompressed(UInt16(truncatingIfNeeded: i)) }
        let rd = (i >> 7) & 0x1f
        let rs1 = (i >> 15) & 0x1f
        let rs2 = (i >> 20) & 0x1f
        let f3 = (i >> 12) & 7
        let f7 = i >> 25
        let bad = Op.illegal(i, len: 4)

        // Register-register forms carry rs2; immediate forms leave it 0.
        func alu(_ k: OpKind) -> Op {
            rd == 0 ? Op(.nop) : Op(k, rd: rd, rs1: rs1, rs2: rs2)
        }
        func alu(_ k: OpKind, imm: Int32) -> Op {
            rd == 0 ? Op(.nop) : Op(k, rd: rd, rs1: rs1, imm: imm)
        }

        switch i & 0x7f {
        case 0x37: return rd == 0 ? Op(.nop) : Op(.lui, rd: rd, imm: Int32(bitPattern: i & 0xffff_f000))
        case 0x17: return rd == 0 ? Op(.nop) : Op(.auipc, rd: rd, imm: Int32(bitPattern: i & 0xffff_f000))
        case 0x6f: return Op(rd == 0 ? .j : .jal, rd: rd, imm: immJ(i))
        case 0x67:
            guard f3 == 0 else { return bad }
            return Op(rd == 0 ? .jr : .jalr, rd: rd, rs1: rs1, imm: immI(i))
        case 0x63:
            let k: OpKind
            switch f3 {
            case 0: k = .beq
            case 1: k = .bne
            case 4: k = .blt
            case 5: k = .bge
            case 6: k = .bltu
            case 7: k = .bgeu
            default: return bad
            }
            return Op(k, rs1: rs1, rs2: rs2, imm: immB(i))
        case 0x03:
            let k: OpKind
            switch f3 {
            case 0: k = .lb
            case 1: k = .lh
            case 2: k = .lw
            case 3: k = .ld
            case 4: k = .lbu
            case 5: k = .lhu
            case 6: k = .lwu
            default: return bad
            }
            if rd == 0 { return Op(.loadDiscard, rs1: rs1, rs2: f3, imm: immI(i)) }
            return Op(k, rd: rd, rs1: rs1, imm: immI(i))
        case 0x23:
            let k: OpKind
            switch f3 {
            case 0: k = .sb
            case 1: k = .sh
            case 2: k = .sw
            case 3: k = .sd
            default: return bad
            }
            return Op(k, rs1: rs1, rs2: rs2, imm: immS(i))
        case 0x13:
            let imm = immI(i)
            switch f3 {
            case 0:
                if rs1 == 0 { return alu(.li, imm: imm) }
                if imm == 0 { return alu(.mv, imm: 0) }
                return alu(.addi, imm: imm)
            case 2: return alu(.slti, imm: imm)
            case 3: return alu(.sltiu, imm: imm)
            case 4: return alu(.xori, imm: imm)
            case 6: return alu(.ori, imm: imm)
            case 7: return alu(.andi, imm: imm)
            case 1:
                guard i >> 26 == 0 else { return bad }
                return alu(.slli, imm: Int32((i >> 20) & 0x3f))
            default:  // 5
                switch i >> 26 {
                case 0x00: return alu(.srli, imm: Int32((i >> 20) & 0x3f))
                case 0x10: return alu(.srai, imm: Int32((i >> 20) & 0x3f))
                default: return bad
                }
            }
        case 0x1b:
            switch (f3, f7) {
            case (0, _): return alu(.addiw, imm: immI(i))
            case (1, 0x00): return alu(.slliw, imm: Int32(rs2))
            case (5, 0x00): return alu(.srliw, imm: Int32(rs2))
            case (5, 0x20): return alu(.sraiw, imm: Int32(rs2))
            default: return bad
            }
        case 0x33:
            let k: OpKind
            switch (f7, f3) {
            case (0x00, 0): k = .add
            case (0x20, 0): k = .sub
            case (0x00, 1): k = .sll
            case (0x00, 2): k = .slt
            case (0x00, 3): k = .sltu
            case (0x00, 4): k = .xor
            case (0x00, 5): k = .srl
            case (0x20, 5): k = .sra
            case (0x00, 6): k = .or
            case (0x00, 7): k = .and
            case (0x01, 0): k = .mul
            case (0x01, 1): k = .mulh
            case (0x01, 2): k = .mulhsu
            case (0x01, 3): k = .mulhu
            case (0x01, 4): k = .div
            case (0x01, 5): k = .divu
            case (0x01, 6): k = .rem
            case (0x01, 7): k = .remu
            default: return bad
            }
            return alu(k)
        case 0x3b:
            let k: OpKind
            switch (f7, f3) {
            case (0x00, 0): k = .addw
            case (0x20, 0): k = .subw
            case (0x00, 1): k = .sllw
            case (0x00, 5): k = .srlw
            case (0x20, 5): k = .sraw
            case (0x01, 0): k = .mulw
            case (0x01, 4): k = .divw
            case (0x01, 5): k = .divuw
            case (0x01, 6): k = .remw
            case (0x01, 7): k = .remuw
            default: return bad
            }
            return alu(k)
        case 0x0f:
            switch f3 {
            case 0: return Op(.fence)
            case 1: return Op(.fenceI)
            default: return bad
            }
        case 0x2f:
            guard f3 == 2 || f3 == 3 else { return bad }
            let f5 = i >> 27
            switch f5 {
            case 0x02: guard rs2 == 0 else { return bad }
            case 0x03, 0x01, 0x00, 0x04, 0x0c, 0x08, 0x10, 0x14, 0x18, 0x1c: break
            default: return bad
            }
            return Op(.amo, rd: rd, rs1: rs1, rs2: rs2, imm: Int32(f5 | (f3 << 8)))
        case 0x73:
            let csr = Int32(i >> 20)
            switch f3 {
            case 0:
                switch i {
                case 0x0000_0073: return Op(.ecall)
                case 0x0010_0073: return Op(.ebreak)
                case 0x3020_0073: return Op(.mret)
                case 0x1020_0073: return Op(.sret)
                case 0x1050_0073: return Op(.wfi)
                default:
                    if f7 == 0x09 && rd == 0 { return Op(.sfenceVMA, rs1: rs1, rs2: rs2) }
                    return bad
                }
            case 1: return Op(.csrrw, rd: rd, rs1: rs1, imm: csr)
            case 2: return Op(.csrrs, rd: rd, rs1: rs1, imm: csr)
            case 3: return Op(.csrrc, rd: rd, rs1: rs1, imm: csr)
            case 5: return Op(.csrrwi, rd: rd, rs1: rs1, imm: csr)
            case 6: return Op(.csrrsi, rd: rd, rs1: rs1, imm: csr)
            case 7: return Op(.csrrci, rd: rd, rs1: rs1, imm: csr)
            default: return bad
            }
        default:
            return bad
        }
    }
}
