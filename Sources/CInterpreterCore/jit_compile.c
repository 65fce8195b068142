// The block compiler: a straight run of decoded ops, up to and including its first jump or
// branch, becomes x86-64 code that does exactly what the threaded core's handlers do. Guest
// registers stay in memory (rbx = x[]), each op loads, computes and stores; loads and stores
// look the TLB up inline and leave to the threaded core on a miss, before any effect, with the
// budget charged for the ops before them only. A block runs only when the budget covers all of
// it, so a slice ends exactly where it does without the JIT.
//
// In a block: rbx = x[], r12 = the regime's data TLBs, r13 = the emu_hart_loop, r14 = budget.
#include "jit.h"
#include "x86_64_encoder.h"

#if EMU_HAS_JIT

/// Long enough for any loop body worth it; short enough that a stub's budget fits one byte often.
#define MAX_BLOCK_OPS 64
#define X(r) MEM(RBX, 8 * (r))
#define LOOP(field) MEM(R13, offsetof(emu_hart_loop, field))
/// The write TLB follows the read TLB.
#define WRITE_TLB ((int32_t)(EMU_TLB_SIZE * sizeof(tlb_entry_t)))

typedef struct {
    size_t jump;
    uintptr_t slot;
    int32_t executed;
} stub_t;

static void link_to(emit_t *e, size_t at, size_t target) {
    if (!e->overflow) patch_rel32(e->start, at, target);
}
static void jump_to_epilogue(emit_t *e, const emu_jit *jit) { link_to(e, jmp_rel32(e), jit->epilogue); }
static void add_const(emit_t *e, int reg, int64_t value) {
    if (value == (int32_t)value) {
        if (value) alu_imm(e, 1, ALU_ADD, reg, (int32_t)value);
    } else {
        // Larger than an imm32 (page offset + auipc's imm): two adds, each sign-extended.
        alu_imm(e, 1, ALU_ADD, reg, (int32_t)(value >> 1));
        alu_imm(e, 1, ALU_ADD, reg, (int32_t)(value - (value >> 1)));
    }
}
/// x[rd] = rax, which then holds x[rd].
static void store_rd(emit_t *e, int rd) {
    // Decode never gives these ops rd = 0, but x0 must stay 0 whatever it gives.
    if (rd) store64(e, X(rd), RAX);
    e->rax_holds = rd ? rd : -1;
}
/// rax = x[r], unless it holds it already.
static void rax_from(emit_t *e, int r) {
    if (e->rax_holds == r) return;
    load64(e, RAX, X(r));
    e->rax_holds = r;
}
/// Where the second operand is after `load_pair`.
enum { IN_MEMORY, IN_RCX, IN_RAX };
/// rax = x[r1]; x[r2] stays in memory, or is moved to rcx when rax held it.
static int load_pair(emit_t *e, int r1, int r2) {
    if (r1 == r2) {
        rax_from(e, r1);
        return IN_RAX;
    }
    if (e->rax_holds == r2) {
        mov_rr(e, RCX, RAX);
        load64(e, RAX, X(r1));
        e->rax_holds = r1;
        return IN_RCX;
    }
    rax_from(e, r1);
    return IN_MEMORY;
}
/// `opc rax, x[r2]` (reg, r/m form; for group 3, `reg` is the /digit) after `load_pair`.
static void with_second(emit_t *e, int w, unsigned opc, int reg, int where, int r2) {
    if (where == IN_MEMORY) op_mem(e, w, opc, reg, X(r2));
    else op_rr(e, w, opc, reg, where == IN_RCX ? RCX : RAX);
}
/// Another register of the block = x[r2] after `load_pair`.
static void second_to(emit_t *e, int reg, int where, int r2) {
    if (where == IN_MEMORY) load64(e, reg, X(r2));
    else mov_rr(e, reg, where == IN_RCX ? RCX : RAX);
}

/// Goes on at a slot of this page: a jump that `jit_chain` may later point at its block.
static void exit_to_slot(emit_t *e, const emu_jit *jit, const op_t *slot) {
    size_t at = jmp_rel32(e);  // rel32 0: falls through to the hand-back below until patched
    mov_imm64(e, RAX, (uintptr_t)slot);
    mov_imm32(e, RDX, (uint32_t)at);
    jump_to_epilogue(e, jit);
}
/// Goes on at page + `delta` (another page, or a computed target): the run loop looks it up.
static void exit_to_pc(emit_t *e, const emu_jit *jit, int64_t delta) {
    load64(e, RAX, LOOP(page));
    add_const(e, RAX, delta);
    store64(e, LOOP(pc), RAX);
    op_rr(e, 0, 0x31, RAX, RAX);  // xor eax, eax
    jump_to_epilogue(e, jit);
}

static uint64_t helper_mulhsu(uint64_t a, uint64_t b) { return mulhsu64(a, b); }
static uint64_t helper_div(uint64_t a, uint64_t b) { return div64((int64_t)a, (int64_t)b); }
static uint64_t helper_divu(uint64_t a, uint64_t b) { return divu64(a, b); }
static uint64_t helper_rem(uint64_t a, uint64_t b) { return rem64((int64_t)a, (int64_t)b); }
static uint64_t helper_remu(uint64_t a, uint64_t b) { return remu64(a, b); }
static uint64_t helper_divw(uint64_t a, uint64_t b) { return div32((int32_t)(uint32_t)a, (int32_t)(uint32_t)b); }
static uint64_t helper_divuw(uint64_t a, uint64_t b) { return divu32(a, b); }
static uint64_t helper_remw(uint64_t a, uint64_t b) { return rem32((int32_t)(uint32_t)a, (int32_t)(uint32_t)b); }
static uint64_t helper_remuw(uint64_t a, uint64_t b) { return remu32(a, b); }

// Division and mulhsu call C (the stack is 16-byte aligned in blocks: see the trampoline).
static void call_helper(emit_t *e, const op_t *op, uint64_t (*helper)(uint64_t, uint64_t)) {
    int where = load_pair(e, op->rs1, op->rs2);
    second_to(e, RSI, where, op->rs2);
    mov_rr(e, RDI, RAX);
    mov_imm64(e, RAX, (uintptr_t)helper);
    op_rr(e, 0, 0xff, 2, RAX);  // call rax
    store_rd(e, op->rd);
}

/// A load or store: the TLB entry's tag keeps the low address bits, so a misaligned access
/// misses, as in the threaded core.
static void emit_access(emit_t *e, const op_t *op, stub_t *stub, uintptr_t slot, int32_t executed) {
    int store = op->kind >= EMU_OP_SB && op->kind <= EMU_OP_SD;
    int size_log2;
    switch (op->kind) {
    case EMU_OP_LB: case EMU_OP_LBU: case EMU_OP_SB: size_log2 = 0; break;
    case EMU_OP_LH: case EMU_OP_LHU: case EMU_OP_SH: size_log2 = 1; break;
    case EMU_OP_LW: case EMU_OP_LWU: case EMU_OP_SW: size_log2 = 2; break;
    default: size_log2 = 3; break;
    }
    int32_t align = (1 << size_log2) - 1;
    int32_t table = store ? WRITE_TLB : 0;
    // A store's value first, while rax may still hold it (r8: its low byte needs no care).
    if (store) {
        if (e->rax_holds == op->rs2) mov_rr(e, R8, RAX);
        else load64(e, R8, X(op->rs2));
    }
    rax_from(e, op->rs1);
    add_const(e, RAX, op->imm);
    e->rax_holds = -1;
    // The entry's byte offset, (a >> 12 & 4095) * 16, in two steps.
    mov_rr(e, RDX, RAX);
    shift_imm(e, 1, SH_SHR, RDX, 8);
    alu_imm(e, 0, ALU_AND, RDX, (EMU_TLB_SIZE - 1) << 4);
    mov_rr(e, RCX, RAX);
    alu_imm(e, 1, ALU_AND, RCX, (int32_t)~(0xfff & ~align));
    alu_mem(e, 1, ALU_CMP, RCX, MEMX(R12, RDX, table));
    *stub = (stub_t){jcc_rel32(e, CC_NE), slot, executed};
    alu_mem(e, 1, ALU_ADD, RAX, MEMX(R12, RDX, table + 8));
    if (store) {
        switch (op->kind) {
        case EMU_OP_SB: op_mem(e, 0, 0x88, R8, MEM(RAX, 0)); break;
        case EMU_OP_SH: e8(e, 0x66); op_mem(e, 0, 0x89, R8, MEM(RAX, 0)); break;
        case EMU_OP_SW: op_mem(e, 0, 0x89, R8, MEM(RAX, 0)); break;
        default: op_mem(e, 1, 0x89, R8, MEM(RAX, 0)); break;
        }
        return;
    }
    switch (op->kind) {
    case EMU_OP_LB: op_mem(e, 1, 0x0fbe, RAX, MEM(RAX, 0)); break;
    case EMU_OP_LH: op_mem(e, 1, 0x0fbf, RAX, MEM(RAX, 0)); break;
    case EMU_OP_LW: op_mem(e, 1, 0x63, RAX, MEM(RAX, 0)); break;
    case EMU_OP_LD: load64(e, RAX, MEM(RAX, 0)); break;
    case EMU_OP_LBU: op_mem(e, 0, 0x0fb6, RAX, MEM(RAX, 0)); break;
    case EMU_OP_LHU: op_mem(e, 0, 0x0fb7, RAX, MEM(RAX, 0)); break;
    default: load32(e, RAX, MEM(RAX, 0)); break;
    }
    store_rd(e, op->rd);
}

static void alu_rr(emit_t *e, const op_t *op, int w, int alu) {
    int where = load_pair(e, op->rs1, op->rs2);
    with_second(e, w, (unsigned)(alu * 8 + 3), RAX, where, op->rs2);
    if (!w) sext_eax(e);
    store_rd(e, op->rd);
}
static void alu_ri(emit_t *e, const op_t *op, int w, int alu) {
    rax_from(e, op->rs1);
    if (op->imm || alu != ALU_ADD) alu_imm(e, w, alu, RAX, op->imm);
    if (!w) sext_eax(e);
    store_rd(e, op->rd);
}
static void shift_rr(emit_t *e, const op_t *op, int w, int shift) {
    int where = load_pair(e, op->rs1, op->rs2);
    if (where != IN_RCX) second_to(e, RCX, where, op->rs2);
    shift_cl(e, w, shift, RAX);
    if (!w) sext_eax(e);
    store_rd(e, op->rd);
}
static void shift_ri(emit_t *e, const op_t *op, int w, int shift) {
    rax_from(e, op->rs1);
    shift_imm(e, w, shift, RAX, (uint8_t)(op->imm & (w ? 63 : 31)));
    if (!w) sext_eax(e);
    store_rd(e, op->rd);
}
static void set_rr(emit_t *e, const op_t *op, int cc) {
    int where = load_pair(e, op->rs1, op->rs2);
    with_second(e, 1, ALU_CMP * 8 + 3, RAX, where, op->rs2);
    setcc_rax(e, cc);
    store_rd(e, op->rd);
}
static void set_ri(emit_t *e, const op_t *op, int cc) {
    rax_from(e, op->rs1);
    alu_imm(e, 1, ALU_CMP, RAX, op->imm);
    setcc_rax(e, cc);
    store_rd(e, op->rd);
}

/// Emits one op that does not end the block; false if the block cannot hold it.
static bool emit_straight(emit_t *e, const op_t *op, stub_t *stubs, int *stub_count, uintptr_t slot, int32_t executed) {
    switch (op->kind) {
    case EMU_OP_NOP: case EMU_OP_FENCE: case EMU_OP_FENCE_I: return true;
    case EMU_OP_LUI: case EMU_OP_LI:
        if (op->rd) store64_imm(e, X(op->rd), op->imm);
        if (e->rax_holds == op->rd) e->rax_holds = -1;
        return true;
    case EMU_OP_MV:
        rax_from(e, op->rs1);
        store_rd(e, op->rd);
        return true;
    case EMU_OP_AUIPC:
        load64(e, RAX, LOOP(page));
        add_const(e, RAX, (int64_t)op->offset + op->imm);
        store_rd(e, op->rd);
        return true;
    case EMU_OP_LB: case EMU_OP_LH: case EMU_OP_LW: case EMU_OP_LD:
    case EMU_OP_LBU: case EMU_OP_LHU: case EMU_OP_LWU:
    case EMU_OP_SB: case EMU_OP_SH: case EMU_OP_SW: case EMU_OP_SD:
        emit_access(e, op, &stubs[(*stub_count)++], slot, executed);
        return true;
    case EMU_OP_ADDI: alu_ri(e, op, 1, ALU_ADD); return true;
    case EMU_OP_XORI: alu_ri(e, op, 1, ALU_XOR); return true;
    case EMU_OP_ORI: alu_ri(e, op, 1, ALU_OR); return true;
    case EMU_OP_ANDI: alu_ri(e, op, 1, ALU_AND); return true;
    case EMU_OP_SLTI: set_ri(e, op, CC_L); return true;
    case EMU_OP_SLTIU: set_ri(e, op, CC_B); return true;
    case EMU_OP_SLLI: shift_ri(e, op, 1, SH_SHL); return true;
    case EMU_OP_SRLI: shift_ri(e, op, 1, SH_SHR); return true;
    case EMU_OP_SRAI: shift_ri(e, op, 1, SH_SAR); return true;
    case EMU_OP_ADD: alu_rr(e, op, 1, ALU_ADD); return true;
    case EMU_OP_SUB: alu_rr(e, op, 1, ALU_SUB); return true;
    case EMU_OP_XOR: alu_rr(e, op, 1, ALU_XOR); return true;
    case EMU_OP_OR: alu_rr(e, op, 1, ALU_OR); return true;
    case EMU_OP_AND: alu_rr(e, op, 1, ALU_AND); return true;
    case EMU_OP_SLT: set_rr(e, op, CC_L); return true;
    case EMU_OP_SLTU: set_rr(e, op, CC_B); return true;
    case EMU_OP_SLL: shift_rr(e, op, 1, SH_SHL); return true;
    case EMU_OP_SRL: shift_rr(e, op, 1, SH_SHR); return true;
    case EMU_OP_SRA: shift_rr(e, op, 1, SH_SAR); return true;
    case EMU_OP_ADDIW: alu_ri(e, op, 0, ALU_ADD); return true;
    case EMU_OP_SLLIW: shift_ri(e, op, 0, SH_SHL); return true;
    case EMU_OP_SRLIW: shift_ri(e, op, 0, SH_SHR); return true;
    case EMU_OP_SRAIW: shift_ri(e, op, 0, SH_SAR); return true;
    case EMU_OP_ADDW: alu_rr(e, op, 0, ALU_ADD); return true;
    case EMU_OP_SUBW: alu_rr(e, op, 0, ALU_SUB); return true;
    case EMU_OP_SLLW: shift_rr(e, op, 0, SH_SHL); return true;
    case EMU_OP_SRLW: shift_rr(e, op, 0, SH_SHR); return true;
    case EMU_OP_SRAW: shift_rr(e, op, 0, SH_SAR); return true;
    case EMU_OP_MUL:
    case EMU_OP_MULW: {
        int w = op->kind == EMU_OP_MUL;
        int where = load_pair(e, op->rs1, op->rs2);
        with_second(e, w, 0x0faf, RAX, where, op->rs2);  // imul: the low bits are the same signed or not
        if (!w) sext_eax(e);
        store_rd(e, op->rd);
        return true;
    }
    case EMU_OP_MULH:
    case EMU_OP_MULHU: {
        int where = load_pair(e, op->rs1, op->rs2);
        with_second(e, 1, 0xf7, op->kind == EMU_OP_MULH ? MUL_IMUL : MUL_MUL, where, op->rs2);  // rdx:rax = rax * r/m
        mov_rr(e, RAX, RDX);
        store_rd(e, op->rd);
        return true;
    }
    case EMU_OP_MULHSU: call_helper(e, op, helper_mulhsu); return true;
    case EMU_OP_DIV: call_helper(e, op, helper_div); return true;
    case EMU_OP_DIVU: call_helper(e, op, helper_divu); return true;
    case EMU_OP_REM: call_helper(e, op, helper_rem); return true;
    case EMU_OP_REMU: call_helper(e, op, helper_remu); return true;
    case EMU_OP_DIVW: call_helper(e, op, helper_divw); return true;
    case EMU_OP_DIVUW: call_helper(e, op, helper_divuw); return true;
    case EMU_OP_REMW: call_helper(e, op, helper_remw); return true;
    case EMU_OP_REMUW: call_helper(e, op, helper_remuw); return true;
    default: return false;
    }
}

static bool is_terminal(uint8_t kind) { return kind >= EMU_OP_JAL && kind <= EMU_OP_BGEU; }

static bool is_straight(uint8_t kind) {
    switch (kind) {
    case EMU_OP_NOP: case EMU_OP_FENCE: case EMU_OP_FENCE_I: case EMU_OP_LUI: case EMU_OP_LI:
    case EMU_OP_MV: case EMU_OP_AUIPC:
        return true;
    default:
        return (kind >= EMU_OP_LB && kind <= EMU_OP_LWU) || (kind >= EMU_OP_SB && kind <= EMU_OP_REMUW);
    }
}

/// The jump or branch that ends a block of `count` ops, charging the budget on every way out.
static void emit_terminal(emit_t *e, const emu_jit *jit, op_t *ops, const op_t *op, int32_t count) {
    const op_t *next = op + (op->len == 4 ? 2 : 1);
    int64_t link = (int64_t)op->offset + op->len;
    int64_t target = (int64_t)op->offset + op->imm;
    switch (op->kind) {
    case EMU_OP_JALR:
    case EMU_OP_JR:
        rax_from(e, op->rs1);
        add_const(e, RAX, op->imm);
        alu_imm(e, 1, ALU_AND, RAX, -2);
        store64(e, LOOP(pc), RAX);
        if (op->kind == EMU_OP_JALR && op->rd) {  // after reading rs1: rd may be rs1
            load64(e, RCX, LOOP(page));
            add_const(e, RCX, link);
            store64(e, X(op->rd), RCX);
        }
        alu_imm(e, 1, ALU_SUB, R14, count);
        op_rr(e, 0, 0x31, RAX, RAX);  // xor eax, eax: go to loop->pc
        jump_to_epilogue(e, jit);
        return;
    case EMU_OP_JAL:
    case EMU_OP_J:
        if (op->kind == EMU_OP_JAL && op->rd) {
            load64(e, RAX, LOOP(page));
            add_const(e, RAX, link);
            store64(e, X(op->rd), RAX);
        }
        alu_imm(e, 1, ALU_SUB, R14, count);
        if (op->target >= 0) exit_to_slot(e, jit, ops + op->target);
        else exit_to_pc(e, jit, target);
        return;
    default: {
        static const int conditions[] = {CC_E, CC_NE, CC_L, CC_GE, CC_B, CC_AE};
        int where = load_pair(e, op->rs1, op->rs2);
        with_second(e, 1, ALU_CMP * 8 + 3, RAX, where, op->rs2);
        size_t taken = jcc_rel32(e, conditions[op->kind - EMU_OP_BEQ]);
        alu_imm(e, 1, ALU_SUB, R14, count);
        exit_to_slot(e, jit, next);
        link_to(e, taken, here(e));
        alu_imm(e, 1, ALU_SUB, R14, count);
        if (op->target >= 0) exit_to_slot(e, jit, ops + op->target);
        else exit_to_pc(e, jit, target);
        return;
    }
    }
}

/// Emits the block at `first` at `jit->used`; returns its offset, or SIZE_MAX if it did not fit.
static size_t emit_block(emu_jit *jit, op_t *ops, unsigned first, int32_t count, bool terminal) {
    emit_t e = {jit->rw, jit->rw + jit->used, jit->rw + jit->size, 0, -1};
    size_t entry = here(&e);
    stub_t stubs[MAX_BLOCK_OPS + 1];
    int stub_count = 0;
    // Too little budget for the whole block: the threaded core runs it op by op.
    alu_imm(&e, 1, ALU_CMP, R14, count);
    stubs[stub_count++] = (stub_t){jcc_rel32(&e, CC_L), (uintptr_t)(ops + first), 0};
    unsigned s = first;
    for (int32_t i = 0; i < count; i++) {
        op_t *op = ops + s;
        if (terminal && i == count - 1) {
            emit_terminal(&e, jit, ops, op, count);
            break;
        }
        emit_straight(&e, op, stubs, &stub_count, (uintptr_t)op, i);
        s += op->len == 4 ? 2 : 1;
    }
    if (!terminal) {
        alu_imm(&e, 1, ALU_SUB, R14, count);
        exit_to_slot(&e, jit, ops + s);
    }
    for (int i = 0; i < stub_count; i++) {
        link_to(&e, stubs[i].jump, here(&e));
        mov_imm64(&e, RAX, stubs[i].slot | 1);
        if (stubs[i].executed) alu_imm(&e, 1, ALU_SUB, R14, stubs[i].executed);
        jump_to_epilogue(&e, jit);
    }
    while (here(&e) & 15) e8(&e, 0xcc);
    if (e.overflow) return SIZE_MAX;
    jit->used = here(&e);
    return entry;
}

uint32_t jit_compile(emu_jit *jit, op_t *ops, unsigned first) {
    // The block's extent first: its op count is checked against the budget on entry.
    int32_t count = 0;
    bool terminal = false;
    for (unsigned s = first; count < MAX_BLOCK_OPS && s < EMU_OPS_PER_PAGE;) {
        uint8_t kind = ops[s].kind;
        if (is_terminal(kind)) {
            count++;
            terminal = true;
            break;
        }
        if (!is_straight(kind)) break;
        count++;
        s += ops[s].len == 4 ? 2 : 1;
    }
    if (count == 0) return ops[first].kind == EMU_OP_UNDECODED ? 0 : JIT_NONE;
    size_t entry = emit_block(jit, ops, first, count, terminal);
    if (entry == SIZE_MAX) {
        jit_flush(jit);
        entry = emit_block(jit, ops, first, count, terminal);
        if (entry == SIZE_MAX) return JIT_NONE;
    }
    if (!jit_list_table(jit, jit_block_table(ops))) return JIT_NONE;
    jit->compiled++;
    return JIT_COMPILED | (uint32_t)entry;
}

bool jit_emit_trampoline(emu_jit *jit) {
    emit_t e = {jit->rw, jit->rw, jit->rw + jit->size, 0, -1};
    // jit_exit_t enter(emu_hart_loop *loop = rdi, const void *block = rsi)
    static const int saved[] = {RBP, RBX, R12, R13, R14, R15};
    for (int i = 0; i < 6; i++) push(&e, saved[i]);
    alu_imm(&e, 1, ALU_SUB, RSP, 8);  // 16-byte aligned for helper calls
    mov_rr(&e, R13, RDI);
    load64(&e, RBX, LOOP(x));
    load64(&e, R12, LOOP(tlb));
    load64(&e, R14, LOOP(remaining));
    op_rr(&e, 0, 0xff, 4, RSI);  // jmp rsi
    // Every block leaves through here with rax:rdx set.
    while (here(&e) & 15) e8(&e, 0xcc);
    jit->epilogue = here(&e);
    store64(&e, LOOP(remaining), R14);
    alu_imm(&e, 1, ALU_ADD, RSP, 8);
    for (int i = 5; i >= 0; i--) pop(&e, saved[i]);
    e8(&e, 0xc3);  // ret
    while (here(&e) & 15) e8(&e, 0xcc);
    if (e.overflow) return false;
    jit->code_start = jit->used = here(&e);
    jit->enter = (jit_exit_t (*)(emu_hart_loop *, const void *))(uintptr_t)jit->rx;
    return true;
}

#else

uint32_t jit_compile(emu_jit *jit, op_t *ops, unsigned first) {
    (void)jit, (void)ops, (void)first;
    return JIT_NONE;
}
bool jit_emit_trampoline(emu_jit *jit) {
    (void)jit;
    return false;
}

#endif
