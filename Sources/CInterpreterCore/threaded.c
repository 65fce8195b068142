// Threaded dispatch over Swift's decoded ops (see include/CInterpreterCore.h). Every handler is
// a function that ends in a guaranteed tail call (`musttail`) of the next op's handler, so each
// has its own indirect jump and its own branch-predictor history, instead of all ops sharing
// the one jump of a `switch`. (A computed `goto *` does not give that with this clang: it
// merges the handlers' tails back into one jump.) `preserve_none` lets the loop's state stay
// in argument registers from handler to handler. What a handler does is exactly what the same
// case of `Hart.run` does; anything that may trap, touch a CSR or a device, or miss a TLB goes
// back to Swift before it has any effect.
#include "core_layout.h"
#include "jit.h"

#include <string.h>

#define LIKELY(c) __builtin_expect(!!(c), 1)
#define UNLIKELY(c) __builtin_expect(!!(c), 0)
// preserve_none arrived in clang 19 (x86-64, AArch64); older compilers still get correct, if
// slower, tail calls.
#if __has_attribute(preserve_none)
#define PRESERVE_NONE __attribute__((preserve_none))
#else
#define PRESERVE_NONE
#endif
#define MUSTTAIL __attribute__((musttail))

// The loop's state, passed in registers from handler to handler; what changes rarely (the
// page's host address, a lookup's pc) lives in `loop`.
#define PARAMS                                                                                  \
    op_t *slot, uint64_t *x, intptr_t remaining, uint64_t page, op_t *page_ops, const tlb_entry_t *tlb, \
        emu_hart_loop *loop
#define ARGS slot, x, remaining, page, page_ops, tlb, loop

typedef PRESERVE_NONE void handler_t(PARAMS);
static handler_t *const handlers[EMU_OP_KIND_COUNT];

#define HANDLER(name) static PRESERVE_NONE void name(PARAMS)

// The next op's handler; the budget is checked before each op as in `Hart.run`.
#define DISPATCH()                                                   \
    do {                                                             \
        if (UNLIKELY(remaining <= 0)) MUSTTAIL return to_swift(ARGS); \
        MUSTTAIL return handlers[slot->kind](ARGS);                  \
    } while (0)
// A branch on the length, as in `Hart.run`: the next slot does not wait for this op's load.
#define NEXT()                                 \
    do {                                       \
        if (LIKELY(slot->len == 4)) slot += 2; \
        else slot += 1;                        \
        remaining -= 1;                        \
        DISPATCH();                            \
    } while (0)
#define RD x[slot->rd]
#define RS1 x[slot->rs1]
#define RS2 x[slot->rs2]
#define IMM ((uint64_t)(int64_t)slot->imm)
#define HERE (page + slot->offset)

// Hands the loop back to Swift with `slot` not yet run.
HANDLER(to_swift) {
    (void)x, (void)tlb;
    loop->slot = slot;
    loop->page = page;
    loop->page_ops = page_ops;
    loop->remaining = remaining;
}

// A branch target with a compiled block (or one that may become hot): the JIT runs blocks from
// here, chained, while the budget lasts, and hands back the slot to go on from (see jit_run.c).
HANDLER(run_compiled) {
    loop->slot = slot;
    loop->page = page;
    loop->page_ops = page_ops;
    loop->remaining = remaining;
    emu_jit_run(loop);
    slot = loop->slot;
    page = loop->page;
    page_ops = loop->page_ops;
    remaining = loop->remaining;
    if (UNLIKELY(slot == (op_t *)loop->lookup)) MUSTTAIL return to_swift(ARGS);
    DISPATCH();
}

// `slot`, a slot of `page_ops`, is where control arrives from a jump: the JIT's way in.
#define ARRIVE()                                                                            \
    do {                                                                                    \
        if (loop->jit && jit_block_table(page_ops)[slot - page_ops] != JIT_NONE)            \
            MUSTTAIL return run_compiled(ARGS);                                             \
        DISPATCH();                                                                         \
    } while (0)

// A jump to `loop->pc` outside this page: the fetch TLB, or Swift with the lookup sentinel.
HANDLER(look_up) {
    uint64_t pc = loop->pc;
    const fetch_entry_t *f = &((const fetch_entry_t *)loop->tlb_fetch)[tlb_index(pc)];
    if (UNLIKELY(f->tag != (pc & ~(uint64_t)0xfff))) {
        slot = loop->lookup;
        MUSTTAIL return to_swift(ARGS);
    }
    page = f->tag;
    page_ops = f->ops;
    loop->page_host = f->host;
    slot = page_ops + ((pc & 0xfff) >> 1);
    ARRIVE();
}

HANDLER(page_end) {
    loop->pc = HERE;
    MUSTTAIL return look_up(ARGS);
}

// A taken jal, j or branch: its slot in this page when decode resolved one.
HANDLER(taken) {
    remaining -= 1;
    if (LIKELY(slot->target >= 0)) {
        slot = page_ops + slot->target;
        ARRIVE();
    }
    loop->pc = HERE + IMM;
    MUSTTAIL return look_up(ARGS);
}

// A jump to `target`: this page's slot, or the fetch TLB.
#define JUMP(target)                                        \
    do {                                                    \
        uint64_t pc = (target);                             \
        remaining -= 1;                                     \
        if ((pc & ~(uint64_t)0xfff) == page) {              \
            slot = page_ops + ((pc & 0xfff) >> 1);          \
            ARRIVE();                                       \
        }                                                   \
        loop->pc = pc;                                      \
        MUSTTAIL return look_up(ARGS);                      \
    } while (0)

HANDLER(op_jal) {
    RD = HERE + slot->len;
    MUSTTAIL return taken(ARGS);
}
HANDLER(op_jalr) {
    uint64_t target = (RS1 + IMM) & ~(uint64_t)1;
    RD = HERE + slot->len;
    JUMP(target);
}
HANDLER(op_jr) {
    JUMP((RS1 + IMM) & ~(uint64_t)1);
}

#define BRANCH(name, cond)                          \
    HANDLER(name) {                                 \
        if (cond) MUSTTAIL return taken(ARGS);      \
        NEXT();                                     \
    }
BRANCH(op_beq, RS1 == RS2)
BRANCH(op_bne, RS1 != RS2)
BRANCH(op_blt, (int64_t)RS1 < (int64_t)RS2)
BRANCH(op_bge, (int64_t)RS1 >= (int64_t)RS2)
BRANCH(op_bltu, RS1 < RS2)
BRANCH(op_bgeu, RS1 >= RS2)

// Loads and stores: the TLB tag keeps the low address bits, so a misaligned access misses
// (and goes to Swift's slow path, as does every other miss).
#define LOAD(name, type, widen, align)                                           \
    HANDLER(name) {                                                              \
        uint64_t a = RS1 + IMM;                                                  \
        const tlb_entry_t *e = &tlb[tlb_index(a)];                               \
        if (UNLIKELY(e->tag != (a & ~(uint64_t)(0xfff & ~(align))))) MUSTTAIL return to_swift(ARGS); \
        type v;                                                                  \
        memcpy(&v, (const void *)(uintptr_t)(a + e->addend), sizeof v);          \
        RD = widen(v);                                                           \
        NEXT();                                                                  \
    }
#define STORE(name, type, align)                                                 \
    HANDLER(name) {                                                              \
        uint64_t a = RS1 + IMM;                                                  \
        const tlb_entry_t *e = &tlb[EMU_TLB_SIZE + tlb_index(a)];                \
        if (UNLIKELY(e->tag != (a & ~(uint64_t)(0xfff & ~(align))))) MUSTTAIL return to_swift(ARGS); \
        type v = (type)RS2;                                                      \
        memcpy((void *)(uintptr_t)(a + e->addend), &v, sizeof v);               \
        NEXT();                                                                  \
    }
#define S64(v) ((uint64_t)(int64_t)(v))
#define U64(v) ((uint64_t)(v))
LOAD(op_lb, int8_t, S64, 0)
LOAD(op_lh, int16_t, S64, 1)
LOAD(op_lw, int32_t, S64, 3)
LOAD(op_ld, uint64_t, U64, 7)
LOAD(op_lbu, uint8_t, U64, 0)
LOAD(op_lhu, uint16_t, U64, 1)
LOAD(op_lwu, uint32_t, U64, 3)
STORE(op_sb, uint8_t, 0)
STORE(op_sh, uint16_t, 1)
STORE(op_sw, uint32_t, 3)
STORE(op_sd, uint64_t, 7)

#define ALU(name, expr) \
    HANDLER(name) {     \
        RD = (expr);    \
        NEXT();         \
    }
HANDLER(op_nop) { NEXT(); }
ALU(op_li, IMM)
ALU(op_mv, RS1)
ALU(op_auipc, HERE + IMM)
ALU(op_addi, RS1 + IMM)
ALU(op_slti, (int64_t)RS1 < (int64_t)IMM)
ALU(op_sltiu, RS1 < IMM)
ALU(op_xori, RS1 ^ IMM)
ALU(op_ori, RS1 | IMM)
ALU(op_andi, RS1 & IMM)
ALU(op_slli, RS1 << (IMM & 63))
ALU(op_srli, RS1 >> (IMM & 63))
ALU(op_srai, (uint64_t)((int64_t)RS1 >> (IMM & 63)))
ALU(op_add, RS1 + RS2)
ALU(op_sub, RS1 - RS2)
ALU(op_sll, RS1 << (RS2 & 63))
ALU(op_slt, (int64_t)RS1 < (int64_t)RS2)
ALU(op_sltu, RS1 < RS2)
ALU(op_xor, RS1 ^ RS2)
ALU(op_srl, RS1 >> (RS2 & 63))
ALU(op_sra, (uint64_t)((int64_t)RS1 >> (RS2 & 63)))
ALU(op_or, RS1 | RS2)
ALU(op_and, RS1 & RS2)
ALU(op_addiw, sext32(RS1 + IMM))
ALU(op_slliw, sext32((uint32_t)RS1 << (IMM & 31)))
ALU(op_srliw, sext32((uint32_t)RS1 >> (IMM & 31)))
ALU(op_sraiw, (uint64_t)(int64_t)((int32_t)(uint32_t)RS1 >> (IMM & 31)))
ALU(op_addw, sext32(RS1 + RS2))
ALU(op_subw, sext32(RS1 - RS2))
ALU(op_sllw, sext32((uint32_t)RS1 << (RS2 & 31)))
ALU(op_srlw, sext32((uint32_t)RS1 >> (RS2 & 31)))
ALU(op_sraw, (uint64_t)(int64_t)((int32_t)(uint32_t)RS1 >> (RS2 & 31)))

ALU(op_mul, RS1 * RS2)
ALU(op_mulh, (uint64_t)(((__int128)(int64_t)RS1 * (__int128)(int64_t)RS2) >> 64))
ALU(op_mulhsu, mulhsu64(RS1, RS2))
ALU(op_mulhu, (uint64_t)(((unsigned __int128)RS1 * (unsigned __int128)RS2) >> 64))
ALU(op_div, div64((int64_t)RS1, (int64_t)RS2))
ALU(op_divu, divu64(RS1, RS2))
ALU(op_rem, rem64((int64_t)RS1, (int64_t)RS2))
ALU(op_remu, remu64(RS1, RS2))
ALU(op_mulw, sext32(RS1 * RS2))
ALU(op_divw, div32((int32_t)(uint32_t)RS1, (int32_t)(uint32_t)RS2))
ALU(op_divuw, divu32(RS1, RS2))
ALU(op_remw, rem32((int32_t)(uint32_t)RS1, (int32_t)(uint32_t)RS2))
ALU(op_remuw, remu32(RS1, RS2))

#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Winitializer-overrides"
static handler_t *const handlers[EMU_OP_KIND_COUNT] = {
    [0 ... EMU_OP_KIND_COUNT - 1] = to_swift,
    [EMU_OP_PAGE_END] = page_end, [EMU_OP_LOOKUP] = look_up, [EMU_OP_NOP] = op_nop,
    [EMU_OP_FENCE] = op_nop, [EMU_OP_FENCE_I] = op_nop,
    [EMU_OP_LUI] = op_li, [EMU_OP_LI] = op_li, [EMU_OP_AUIPC] = op_auipc, [EMU_OP_MV] = op_mv,
    [EMU_OP_JAL] = op_jal, [EMU_OP_J] = taken, [EMU_OP_JALR] = op_jalr, [EMU_OP_JR] = op_jr,
    [EMU_OP_BEQ] = op_beq, [EMU_OP_BNE] = op_bne, [EMU_OP_BLT] = op_blt, [EMU_OP_BGE] = op_bge,
    [EMU_OP_BLTU] = op_bltu, [EMU_OP_BGEU] = op_bgeu,
    [EMU_OP_LB] = op_lb, [EMU_OP_LH] = op_lh, [EMU_OP_LW] = op_lw, [EMU_OP_LD] = op_ld,
    [EMU_OP_LBU] = op_lbu, [EMU_OP_LHU] = op_lhu, [EMU_OP_LWU] = op_lwu,
    [EMU_OP_SB] = op_sb, [EMU_OP_SH] = op_sh, [EMU_OP_SW] = op_sw, [EMU_OP_SD] = op_sd,
    [EMU_OP_ADDI] = op_addi, [EMU_OP_SLTI] = op_slti, [EMU_OP_SLTIU] = op_sltiu,
    [EMU_OP_XORI] = op_xori, [EMU_OP_ORI] = op_ori, [EMU_OP_ANDI] = op_andi,
    [EMU_OP_SLLI] = op_slli, [EMU_OP_SRLI] = op_srli, [EMU_OP_SRAI] = op_srai,
    [EMU_OP_ADD] = op_add, [EMU_OP_SUB] = op_sub, [EMU_OP_SLL] = op_sll, [EMU_OP_SLT] = op_slt,
    [EMU_OP_SLTU] = op_sltu, [EMU_OP_XOR] = op_xor, [EMU_OP_SRL] = op_srl, [EMU_OP_SRA] = op_sra,
    [EMU_OP_OR] = op_or, [EMU_OP_AND] = op_and,
    [EMU_OP_ADDIW] = op_addiw, [EMU_OP_SLLIW] = op_slliw, [EMU_OP_SRLIW] = op_srliw,
    [EMU_OP_SRAIW] = op_sraiw, [EMU_OP_ADDW] = op_addw, [EMU_OP_SUBW] = op_subw,
    [EMU_OP_SLLW] = op_sllw, [EMU_OP_SRLW] = op_srlw, [EMU_OP_SRAW] = op_sraw,
    [EMU_OP_MUL] = op_mul, [EMU_OP_MULH] = op_mulh, [EMU_OP_MULHSU] = op_mulhsu,
    [EMU_OP_MULHU] = op_mulhu, [EMU_OP_DIV] = op_div, [EMU_OP_DIVU] = op_divu,
    [EMU_OP_REM] = op_rem, [EMU_OP_REMU] = op_remu, [EMU_OP_MULW] = op_mulw,
    [EMU_OP_DIVW] = op_divw, [EMU_OP_DIVUW] = op_divuw, [EMU_OP_REMW] = op_remw,
    [EMU_OP_REMUW] = op_remuw,
};
#pragma clang diagnostic pop

void emu_hart_run_threaded(emu_hart_loop *loop) {
    op_t *slot = loop->slot;
    uint64_t *x = loop->x;
    intptr_t remaining = loop->remaining;
    uint64_t page = loop->page;
    op_t *page_ops = loop->page_ops;
    const tlb_entry_t *tlb = loop->tlb;
    if (remaining <= 0) return;
    // Swift calls in after every op it ran: a block may start here too.
    if (loop->jit && page_ops != (op_t *)loop->lookup &&
        (uintptr_t)slot - (uintptr_t)page_ops < EMU_OPS_PER_PAGE * sizeof(op_t) &&
        jit_block_table(page_ops)[slot - page_ops] != JIT_NONE) {
        run_compiled(ARGS);
        return;
    }
    handlers[slot->kind](ARGS);
}
