// Running compiled blocks: from a jump target, block after block — straight from one to the
// next once `chain` has patched the jump between them, else through this loop — until a slot
// with no block, a TLB miss, too little budget, or a jump to a page the fetch TLB does not
// hold. The state it hands back is what the threaded core would have reached.
#include "jit.h"
#include "x86_64_encoder.h"

void emu_jit_run(emu_hart_loop *loop) {
    emu_jit *jit = loop->jit;
    op_t *slot = loop->slot;
    op_t *ops = loop->page_ops;
    // The jump to patch once the next block is known to exist, with the buffer's generation then.
    uintptr_t chain = 0;
    uint64_t generation = jit->generation;
    for (;;) {
        size_t index = (size_t)(slot - ops);
        if (index >= EMU_OPS_PER_PAGE) break;
        uint32_t *table = jit_block_table(ops);
        uint32_t block = table[index];
        if (block < JIT_COMPILED) {
            if (block == JIT_NONE) break;
            if (block + 1 < jit->hot) {
                table[index] = block + 1;
                break;
            }
            block = jit_compile(jit, ops, (unsigned)index);
            table[index] = block;
            if (block < JIT_COMPILED) break;
        }
        if (chain && generation == jit->generation) patch_rel32(jit->rw, chain, block & ~JIT_COMPILED);
        generation = jit->generation;
        jit_exit_t exit = jit->enter(loop, jit->rx + (block & ~JIT_COMPILED));
        chain = 0;
        if (exit.next & 1) {
            slot = (op_t *)(exit.next & ~(uintptr_t)1);
            break;
        }
        if (exit.next) {
            slot = (op_t *)exit.next;
            chain = exit.chain;
        } else {
            // A jump to loop->pc: this page's slot, else the fetch TLB (as the core's look_up).
            uint64_t pc = loop->pc;
            if ((pc & ~(uint64_t)0xfff) != loop->page) {
                const fetch_entry_t *f = &((const fetch_entry_t *)loop->tlb_fetch)[tlb_index(pc)];
                if (f->tag != (pc & ~(uint64_t)0xfff)) {
                    slot = loop->lookup;
                    break;
                }
                loop->page = f->tag;
                loop->page_host = f->host;
                ops = f->ops;
            }
            slot = ops + ((pc & 0xfff) >> 1);
        }
        if (loop->remaining <= 0) break;
    }
    loop->slot = slot;
    loop->page_ops = ops;
}
