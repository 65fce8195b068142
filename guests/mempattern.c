/* memory-pattern: increments one byte of every 4 KiB page of a region per
 * pass and checks that every page holds the previous pass's value. The
 * values cycle 1..255 and never return to zero, so no page ever looks like
 * a zero page after the first pass (SPEC §3). PASSES = 0 runs forever.
 * REGION_MIB sets the region (16 or 512 MiB). IDLE writes the region once,
 * then only checks it (reads, nothing dirtied) once a second of guest time,
 * waiting in WFI between checks: a guest with its memory populated and idle. */
#include "guest.h"

#ifndef PASSES
#define PASSES 64
#endif
#ifndef REGION_MIB
#define REGION_MIB 16
#endif
#define REGION_SIZE ((u64)REGION_MIB << 20)
#define CHECK_PERIOD 10000000UL   /* 1 s of mtime at 10 MHz */

extern char _end[];
volatile u64 passes = PASSES;

static u64 byte_offset(u64 page) { return (page * 64) & 0xfff; }

static int check_page(u8 *base, u64 p, u8 expect)
{
    volatile u8 *b = base + p * 4096 + byte_offset(p);
    if (*b == expect)
        return 1;
    puts("memory-pattern: page ");
    put_dec(p);
    puts(" holds ");
    put_dec(*b);
    puts(", expected ");
    put_dec(expect);
    puts("\n");
    return 0;
}

#ifdef IDLE
/* Sleeps until mtime passes `deadline`: MTIE on, interrupts globally off, so WFI
 * returns when the timer is due without taking a trap. */
static void sleep_until(u64 deadline)
{
    REG64(CLINT_MTIMECMP) = deadline;
    csr_set(mie, 1UL << 7);
    while (REG64(CLINT_MTIME) < deadline)
        __asm__ volatile("wfi");
    csr_clear(mie, 1UL << 7);
}
#endif

int main(void)
{
    u8 *base = (u8 *)(((u64)_end + 4095) & ~4095UL);
    u64 pages = REGION_SIZE / 4096;

    puts("memory-pattern: ");
    put_dec(pages);
    puts(" pages at 0x");
    put_hex((u64)base);
    puts("\n");
#ifdef IDLE
    for (u64 p = 0; p < pages; p++)
        *(volatile u8 *)(base + p * 4096 + byte_offset(p)) = 1;
    puts("memory-pattern: filled, idle\n");
    u64 deadline = REG64(CLINT_MTIME);
    for (u64 check = 1;; check++) {
        deadline += CHECK_PERIOD;
        sleep_until(deadline);
        for (u64 p = 0; p < pages; p++)
            if (!check_page(base, p, 1))
                return 2;
        puts("check ");
        put_dec(check);
        puts(" ok\n");
    }
#else
    u8 expect = 0;
    for (u64 pass = 1; passes == 0 || pass <= passes; pass++) {
        u8 next = expect == 255 ? 1 : (u8)(expect + 1);
        for (u64 p = 0; p < pages; p++) {
            if (!check_page(base, p, expect))
                return 2;
            *(volatile u8 *)(base + p * 4096 + byte_offset(p)) = next;
        }
        expect = next;
        if (pass % 16 == 0) {
            puts("pass ");
            put_dec(pass);
            puts(" ok\n");
        }
    }
    puts("memory-pattern: OK\n");
    return 0;
#endif
}
