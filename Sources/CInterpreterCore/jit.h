// The JIT's parts as the threaded core and each other see them. A decoded page's block table
// (after its ops, see EMU_CODE_PAGE_OPS) holds one word per slot: a count of entries while the
// slot is warming up, JIT_NONE when no block can start there, or JIT_COMPILED | the block's
// offset in the code buffer. Dropping a page's ops zeroes its table, so compiled code never
// outlives the ops it was compiled from.
#pragma once
#include "core_layout.h"

#include <stdbool.h>

#if defined(__x86_64__) && defined(__linux__)
#define EMU_HAS_JIT 1
#else
#define EMU_HAS_JIT 0
#endif

_Static_assert(EMU_CODE_PAGE_OPS == EMU_OPS_PER_PAGE + 1 + ((EMU_OPS_PER_PAGE + 1) * 4 + 15) / 16, "block table size");

#define JIT_COMPILED 0x80000000u
#define JIT_NONE 0x7fffffffu
/// The table word after the slots' words: 1 once the table is in the JIT's list of tables.
#define JIT_TABLE_LISTED EMU_OPS_PER_PAGE

static inline uint32_t *jit_block_table(op_t *page_ops) { return (uint32_t *)(page_ops + EMU_OPS_PER_PAGE + 1); }

/// What a block hands back (rax:rdx): `next` is the slot to go on from in the same page, that
/// slot | 1 when the threaded core must run it (a TLB miss, or too little budget to enter), or 0
/// for a jump to `loop->pc`; with a slot, `chain` is the offset of the jump to patch so the
/// block goes straight on to the next one (0: none).
typedef struct {
    uintptr_t next;
    uintptr_t chain;
} jit_exit_t;

struct emu_jit {
    /// One buffer mapped twice (memfd): written through `rw`, run from `rx`; never both.
    uint8_t *rw;
    const uint8_t *rx;
    /// `size` is what may be filled (tests lower it), `mapped` what is mapped.
    size_t size, mapped, used;
    /// Where blocks start (after the shared entry and exit code), and the exit's offset.
    size_t code_start, epilogue;
    uint32_t hot;
    /// Bumped by every flush: an offset taken before it is stale.
    uint64_t generation;
    uint64_t compiled;
    /// Block tables holding compiled blocks, zeroed when the buffer is flushed.
    uint32_t **tables;
    size_t table_count, table_capacity;
    jit_exit_t (*enter)(emu_hart_loop *loop, const void *code);
};

/// Compiles the block starting at slot `first`: JIT_COMPILED | offset, JIT_NONE when no block
/// can start there, or 0 to try again later (the slot is not decoded yet). May flush the buffer.
uint32_t jit_compile(emu_jit *jit, op_t *page_ops, unsigned first);
/// Emits the shared entry and exit code at the start of the buffer.
bool jit_emit_trampoline(emu_jit *jit);
/// Forgets every compiled block (the buffer is full).
void jit_flush(emu_jit *jit);
/// Adds a page's table to the list `jit_flush` clears.
bool jit_list_table(emu_jit *jit, uint32_t *table);
/// Runs compiled blocks from `loop->slot` while it can (jit_run.c).
void emu_jit_run(emu_hart_loop *loop);
