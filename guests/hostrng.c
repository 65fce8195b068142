/* hostrng: reads the host entropy source of `sandbox-hostrng` (emupanel's
 * host-rng at 0x102000: DATA at +0, STATUS at +8). Eight 64-bit reads must
 * give at least seven distinct values; on a board without the device the
 * first read is an access fault (lib.c's trap handler fails with 99). */
#include "guest.h"

#define HOSTRNG        0x00102000UL
#define HOSTRNG_DATA   (HOSTRNG + 0x0)
#define HOSTRNG_STATUS (HOSTRNG + 0x8)

int main(void)
{
    csr_write(mtvec, m_trap_entry);             /* a fault ends the run (99) */
    u32 status = REG32(HOSTRNG_STATUS);
    puts("hostrng: status ");
    put_hex(status);
    puts("\n");
    if ((status & 1) == 0)
        finish(2);
    u64 values[8];
    for (int i = 0; i < 8; i++)
        values[i] = REG64(HOSTRNG_DATA);
    int distinct = 0;
    for (int i = 0; i < 8; i++) {
        int seen = 0;
        for (int j = 0; j < i; j++)
            if (values[j] == values[i])
                seen = 1;
        distinct += !seen;
    }
    puts("hostrng: 8 reads, ");
    put_dec(distinct);
    puts(" distinct\n");
    return distinct >= 7 ? 0 : 3;
}
