/* tlbflush: M-mode (no translation) and S-mode (Sv39) see different memory at the same
 * virtual addresses: S-mode's megapage at 0x80400000 is backed by 0x80600000. They take
 * turns through ecall/mret 4000 times, each reading and writing pages of that range first,
 * sometimes a few pages (the TLB clears what was filled) and sometimes many (it sweeps
 * everything). A translation surviving a mode switch would read or write the wrong copy.
 * At the end M-mode checks both copies word for word. */
#include "guest.h"

#define ALIAS_VA   0x80400000UL   /* M: itself; S: ALIAS_PA */
#define ALIAS_PA   0x80600000UL
#define PAGES      256            /* 1 MiB of the 2 MiB megapage */
#define ROUNDS     4000

static u64 root[512] __attribute__((aligned(4096)));
static u64 l1[512] __attribute__((aligned(4096)));
static volatile u64 round, failures, probing;

/* Pages touched this round: few (below the TLB's fill log) or many (above it). */
static u64 pages_in(u64 r) { return (r % 3 == 0) ? 100 : 5; }

static void touch(u64 r, u64 tag)
{
    for (u64 i = 0; i < pages_in(r); i++) {
        u64 page = (r * 7 + i * 13) % PAGES;
        volatile u64 *p = (volatile u64 *)(ALIAS_VA + page * 4096 + (r % 512) * 8);
        if ((*p >> 56) != 0 && (*p >> 56) != tag)
            failures++;                    /* the other mode's copy showed through */
        *p = tag << 56 | r;
    }
}

void m_trap(struct frame *f)
{
    u64 cause = csr_read(mcause);
    if (cause == 2 && probing) {   /* no PMP on this hart: nothing to open */
        f->epc += 4;
        return;
    }
    if (cause != 9) {
        puts("tlbflush: unexpected M-mode trap ");
        put_hex(cause);
        puts("\n");
        finish(3);
    }
    touch(round, 0x4d);            /* 'M' */
    round++;
    f->epc += 4;
    if (round < ROUNDS)
        return;
    u64 m = 0, s = 0;
    for (u64 w = 0; w < PAGES * 512; w++) {
        u64 a = ((volatile u64 *)ALIAS_VA)[w] >> 56, b = ((volatile u64 *)ALIAS_PA)[w] >> 56;
        if (a == 0x4d) m++;
        if (b == 0x53) s++;
        if ((a != 0 && a != 0x4d) || (b != 0 && b != 0x53)) failures++;
    }
    puts("tlbflush: ");
    put_dec(round);
    puts(" mode switches, words written by M ");
    put_dec(m);
    puts(", by S ");
    put_dec(s);
    puts(", ");
    put_dec(failures);
    puts(" failures\n");
    finish(failures ? 1 : 0);
}

static void s_main(void)
{
    for (;;) {
        touch(round, 0x53);        /* 'S' */
        __asm__ volatile("ecall");
    }
}

int main(void)
{
    root[0] = PTE(0, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);   /* MMIO gigapage */
    root[2] = PTE(l1, PTE_V);                                   /* RAM in megapages */
    for (u64 i = 0; i < 512; i++)
        l1[i] = PTE(0x80000000UL + (i << 21), PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D);
    l1[(ALIAS_VA >> 21) & 511] = PTE(ALIAS_PA, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);

    csr_write(mtvec, m_trap_entry);
    open_pmp(&probing);
    enter_s_mode(root, s_main);
}
