/* memory-pattern: increments one byte of every 4 KiB page of a region per
 * pass and checks that every page holds the previous pass's value. The
 * values cycle 1..255 and never return to zero, so no page ever looks like
 * a zero page after the first pass (SPEC §3). PASSES = 0 runs forever. */
#include "guest.h"

#ifndef PASSES
#define PASSES 64
#endif
#define REGION_SIZE (16UL << 20)

extern char _end[];
volatile u64 passes = PASSES;

static u64 byte_offset(u64 page) { return (page * 64) & 0xfff; }

int main(void)
{
    u8 *base = (u8 *)(((u64)_end + 4095) & ~4095UL);
    u64 pages = REGION_SIZE / 4096;
    u8 expect = 0;

    puts("memory-pattern: ");
    put_dec(pages);
    puts(" pages at 0x");
    put_hex((u64)base);
    puts("\n");
    for (u64 pass = 1; passes == 0 || pass <= passes; pass++) {
        u8 next = expect == 255 ? 1 : (u8)(expect + 1);
        for (u64 p = 0; p < pages; p++) {
            volatile u8 *b = base + p * 4096 + byte_offset(p);
            if (*b != expect) {
                puts("memory-pattern: page ");
                put_dec(p);
                puts(" holds ");
                put_dec(*b);
                puts(", expected ");
                put_dec(expect);
                puts("\n");
                return 2;
            }
            *b = next;
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
}
