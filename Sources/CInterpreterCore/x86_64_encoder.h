// Just enough of the x86-64 encoding (Intel SDM vol. 2, ch. 2) for the JIT: REX prefixes,
// ModRM/SIB memory operands with a displacement, and the handful of forms jit_compile.c uses.
#pragma once
#include <stdint.h>
#include <string.h>

enum { RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15 };
/// Condition codes (the low nibble of jcc/setcc).
enum { CC_B = 2, CC_AE = 3, CC_E = 4, CC_NE = 5, CC_L = 0xc, CC_GE = 0xd };
/// Group-1 ALU operations (/digit of 0x81) and their `reg op= r/m` opcodes.
enum { ALU_ADD = 0, ALU_OR = 1, ALU_AND = 4, ALU_SUB = 5, ALU_XOR = 6, ALU_CMP = 7 };
/// Group-2 shifts (/digit of 0xc1, 0xd3) and group-3 multiplies (/digit of 0xf7).
enum { SH_SHL = 4, SH_SHR = 5, SH_SAR = 7, MUL_MUL = 4, MUL_IMUL = 5 };

typedef struct {
    uint8_t *start, *p, *end;
    int overflow;
    /// The guest register whose value rax holds (-1: none): jit_compile.c's one cached register.
    int rax_holds;
} emit_t;

/// [base + index + disp]; index < 0 for none.
typedef struct {
    int base, index;
    int32_t disp;
} mem_t;
#define MEM(b, d) ((mem_t){(b), -1, (int32_t)(d)})
#define MEMX(b, i, d) ((mem_t){(b), (i), (int32_t)(d)})

static inline void e8(emit_t *e, uint8_t b) {
    if (e->p < e->end) *e->p++ = b;
    else e->overflow = 1;
}
static inline void e32(emit_t *e, uint32_t v) {
    for (int i = 0; i < 4; i++) e8(e, (uint8_t)(v >> (8 * i)));
}
static inline void e64(emit_t *e, uint64_t v) {
    for (int i = 0; i < 8; i++) e8(e, (uint8_t)(v >> (8 * i)));
}
static inline size_t here(const emit_t *e) { return (size_t)(e->p - e->start); }

static inline void rex(emit_t *e, int w, int reg, int index, int base) {
    uint8_t v = (uint8_t)(0x40 | (w ? 8 : 0) | ((reg >> 3) & 1) << 2 | (index >= 0 ? ((index >> 3) & 1) << 1 : 0) |
                          ((base >> 3) & 1));
    if (v != 0x40) e8(e, v);
}
static inline void opcode(emit_t *e, unsigned opc) {
    if (opc > 0xff) e8(e, (uint8_t)(opc >> 8));
    e8(e, (uint8_t)opc);
}
// Always mod 01 or 10 (a displacement), so rbp/r13 bases need no special case; an rsp/r12
// base or an index needs a SIB byte.
static inline void modrm_mem(emit_t *e, int reg, mem_t m) {
    int mod = m.disp >= -128 && m.disp <= 127 ? 1 : 2;
    if (m.index < 0 && (m.base & 7) != RSP) {
        e8(e, (uint8_t)(mod << 6 | (reg & 7) << 3 | (m.base & 7)));
    } else {
        e8(e, (uint8_t)(mod << 6 | (reg & 7) << 3 | RSP));
        e8(e, (uint8_t)((m.index < 0 ? RSP : (m.index & 7)) << 3 | (m.base & 7)));
    }
    if (mod == 1) e8(e, (uint8_t)m.disp);
    else e32(e, (uint32_t)m.disp);
}
/// `opc reg, [mem]` (or `[mem], reg`, as the opcode says); w: 64-bit operand size.
static inline void op_mem(emit_t *e, int w, unsigned opc, int reg, mem_t m) {
    rex(e, w, reg, m.index, m.base);
    opcode(e, opc);
    modrm_mem(e, reg, m);
}
/// `opc reg, rm` with both registers.
static inline void op_rr(emit_t *e, int w, unsigned opc, int reg, int rm) {
    rex(e, w, reg, -1, rm);
    opcode(e, opc);
    e8(e, (uint8_t)(0xc0 | (reg & 7) << 3 | (rm & 7)));
}

static inline void load64(emit_t *e, int reg, mem_t m) { op_mem(e, 1, 0x8b, reg, m); }
static inline void load32(emit_t *e, int reg, mem_t m) { op_mem(e, 0, 0x8b, reg, m); }
static inline void store64(emit_t *e, mem_t m, int reg) { op_mem(e, 1, 0x89, reg, m); }
/// mov qword [mem], imm32 (sign-extended).
static inline void store64_imm(emit_t *e, mem_t m, int32_t imm) {
    op_mem(e, 1, 0xc7, 0, m);
    e32(e, (uint32_t)imm);
}
/// `reg op= [mem]` for a group-1 operation (opcode 8 * op + 3).
static inline void alu_mem(emit_t *e, int w, int op, int reg, mem_t m) { op_mem(e, w, (unsigned)(op * 8 + 3), reg, m); }
/// `reg op= imm32` (sign-extended).
static inline void alu_imm(emit_t *e, int w, int op, int reg, int32_t imm) {
    op_rr(e, w, 0x81, op, reg);
    e32(e, (uint32_t)imm);
}
static inline void shift_imm(emit_t *e, int w, int op, int reg, uint8_t count) {
    op_rr(e, w, 0xc1, op, reg);
    e8(e, count);
}
/// Shift by cl: the hardware masks the count to 63 (w) or 31, as RISC-V does.
static inline void shift_cl(emit_t *e, int w, int op, int reg) { op_rr(e, w, 0xd3, op, reg); }
static inline void mov_rr(emit_t *e, int dst, int src) { op_rr(e, 1, 0x89, src, dst); }
static inline void mov_imm64(emit_t *e, int reg, uint64_t imm) {
    rex(e, 1, 0, -1, reg);
    e8(e, (uint8_t)(0xb8 + (reg & 7)));
    e64(e, imm);
}
/// mov r32, imm32 (zero-extended).
static inline void mov_imm32(emit_t *e, int reg, uint32_t imm) {
    rex(e, 0, 0, -1, reg);
    e8(e, (uint8_t)(0xb8 + (reg & 7)));
    e32(e, imm);
}
/// movsxd rax, eax: a 32-bit result sign-extended, as the W ops want.
static inline void sext_eax(emit_t *e) { op_rr(e, 1, 0x63, RAX, RAX); }
/// al = cc; rax = al.
static inline void setcc_rax(emit_t *e, int cc) {
    op_rr(e, 0, 0x0f90u | (unsigned)cc, 0, RAX);
    op_rr(e, 0, 0x0fb6, RAX, RAX);
}
/// A jump whose rel32 is patched later: returns the rel32's offset.
static inline size_t jcc_rel32(emit_t *e, int cc) {
    e8(e, 0x0f);
    e8(e, (uint8_t)(0x80 | cc));
    size_t at = here(e);
    e32(e, 0);
    return at;
}
static inline size_t jmp_rel32(emit_t *e) {
    e8(e, 0xe9);
    size_t at = here(e);
    e32(e, 0);
    return at;
}
/// Points the rel32 at `at` (offsets from `e->start`) to `target`.
static inline void patch_rel32(uint8_t *start, size_t at, size_t target) {
    int32_t rel = (int32_t)((int64_t)target - (int64_t)(at + 4));
    memcpy(start + at, &rel, 4);
}
static inline void push(emit_t *e, int reg) {
    rex(e, 0, 0, -1, reg);
    e8(e, (uint8_t)(0x50 + (reg & 7)));
}
static inline void pop(emit_t *e, int reg) {
    rex(e, 0, 0, -1, reg);
    e8(e, (uint8_t)(0x58 + (reg & 7)));
}
