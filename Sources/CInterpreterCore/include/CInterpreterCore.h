// The interpreter's threaded core: the decoded-op loop for the common integer
// instructions, with one indirect jump per op (`goto *handler`), which Swift
// cannot express. It runs over the same decoded pages, registers and TLBs as
// `Hart.run` and hands every other op back to Swift unexecuted.
#pragma once
#include <stddef.h>
#include <stdint.h>

/// Entries per TLB (`Hart.tlbSize`).
#define EMU_TLB_SIZE 4096

/// Op kinds, numbered as Swift's `OpKind` (RISCVTests.ThreadedCoreTests checks them).
enum {
    EMU_OP_UNDECODED = 0, EMU_OP_PAGE_END, EMU_OP_LOOKUP, EMU_OP_ILLEGAL, EMU_OP_NOP,
    EMU_OP_LUI, EMU_OP_AUIPC, EMU_OP_JAL, EMU_OP_J, EMU_OP_JALR, EMU_OP_JR,
    EMU_OP_BEQ, EMU_OP_BNE, EMU_OP_BLT, EMU_OP_BGE, EMU_OP_BLTU, EMU_OP_BGEU,
    EMU_OP_LB, EMU_OP_LH, EMU_OP_LW, EMU_OP_LD, EMU_OP_LBU, EMU_OP_LHU, EMU_OP_LWU,
    EMU_OP_LOAD_DISCARD,
    EMU_OP_SB, EMU_OP_SH, EMU_OP_SW, EMU_OP_SD,
    EMU_OP_ADDI, EMU_OP_SLTI, EMU_OP_SLTIU, EMU_OP_XORI, EMU_OP_ORI, EMU_OP_ANDI,
    EMU_OP_SLLI, EMU_OP_SRLI, EMU_OP_SRAI,
    EMU_OP_ADD, EMU_OP_SUB, EMU_OP_SLL, EMU_OP_SLT, EMU_OP_SLTU, EMU_OP_XOR,
    EMU_OP_SRL, EMU_OP_SRA, EMU_OP_OR, EMU_OP_AND,
    EMU_OP_ADDIW, EMU_OP_SLLIW, EMU_OP_SRLIW, EMU_OP_SRAIW,
    EMU_OP_ADDW, EMU_OP_SUBW, EMU_OP_SLLW, EMU_OP_SRLW, EMU_OP_SRAW,
    EMU_OP_MV, EMU_OP_LI,
    EMU_OP_MUL, EMU_OP_MULH, EMU_OP_MULHSU, EMU_OP_MULHU, EMU_OP_DIV, EMU_OP_DIVU,
    EMU_OP_REM, EMU_OP_REMU,
    EMU_OP_MULW, EMU_OP_DIVW, EMU_OP_DIVUW, EMU_OP_REMW, EMU_OP_REMUW,
    EMU_OP_AMO,
    EMU_OP_CSRRW, EMU_OP_CSRRS, EMU_OP_CSRRC, EMU_OP_CSRRWI, EMU_OP_CSRRSI, EMU_OP_CSRRCI,
    EMU_OP_ECALL, EMU_OP_EBREAK, EMU_OP_MRET, EMU_OP_SRET, EMU_OP_WFI, EMU_OP_SFENCE_VMA,
    EMU_OP_FENCE, EMU_OP_FENCE_I,
    EMU_OP_KIND_COUNT
};

/// Slots per decoded page (one per halfword), followed by the page-end sentinel.
#define EMU_OPS_PER_PAGE 2048
/// A decoded page's allocation, in 16-byte op units: the slots, the page-end sentinel, then the
/// JIT's block table (one 32-bit word per slot plus one; all zero when nothing is compiled).
/// (A plain number so Swift sees it: 2049 + ceil(2049 * 4 / 16); jit.h checks it.)
enum { EMU_CODE_PAGE_OPS = 2562 };

/// Compiled x86-64 code for straight-line runs of ops (see jit_cache.c); opaque to Swift.
typedef struct emu_jit emu_jit;

/// The loop state `Hart.run` carries, handed over and back. On return `slot` is the op to run
/// next (not yet executed): one the core leaves to Swift, a load or store that missed its
/// TLB, the lookup sentinel with its target in `pc` after a fetch TLB miss, or any slot
/// once `remaining` reaches 0.
typedef struct {
    /// x0...x31.
    uint64_t *_Nonnull x;
    /// The current op (a Swift `Op`, 16 bytes).
    void *_Nonnull slot;
    /// Guest virtual address of the page `page_ops` decodes; `page_host` its host address.
    uint64_t page;
    void *_Nonnull page_ops;
    void *_Nonnull page_host;
    /// A jump target for the lookup sentinel.
    uint64_t pc;
    /// Steps left in the slice.
    intptr_t remaining;
    /// The current regime's data TLBs (read then write, `tlb_size` entries each) and fetch TLB.
    const void *_Nonnull tlb;
    const void *_Nonnull tlb_fetch;
    /// The lookup sentinel slot.
    void *_Nonnull lookup;
    /// Compiled blocks to run at jump targets, or NULL: the threaded core alone.
    emu_jit *_Nullable jit;
} emu_hart_loop;

/// Runs ops from `loop->slot` until one it leaves to Swift, a TLB miss, or the budget's end.
void emu_hart_run_threaded(emu_hart_loop *_Nonnull loop);

/// A JIT for this host (x86-64 Linux), or NULL where there is none or executable memory cannot
/// be had. Its block tables live in decoded pages (`EMU_CODE_PAGE_OPS`), which must outlive it.
emu_jit *_Nullable emu_jit_create(void);
void emu_jit_destroy(emu_jit *_Nullable jit);
/// Entries into a slot before its block is compiled (default 4; tests use 1).
void emu_jit_set_hot_threshold(emu_jit *_Nonnull jit, uint32_t entries);
/// Forgets every block compiled from a decoded page: whatever drops its ops calls this.
void emu_jit_drop_blocks(void *_Nonnull page_ops);
/// Blocks compiled so far, and times the code buffer was full and started over (for tests).
uint64_t emu_jit_blocks_compiled(const emu_jit *_Nonnull jit);
uint64_t emu_jit_flushes(const emu_jit *_Nonnull jit);
/// Fills at most `bytes` of the code buffer (at least a page past the shared code): tests make
/// it overflow often.
void emu_jit_limit_code(emu_jit *_Nonnull jit, size_t bytes);
