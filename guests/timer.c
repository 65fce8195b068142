/* timer: 100 Hz machine-timer interrupts (CLINT mtimecmp, 10 MHz mtime)
 * for one second of guest time; counts lost ticks (a deadline already past
 * when the handler ran) and mtime going backwards. */
#include "guest.h"

#define PERIOD 100000UL   /* 10 ms at 10 MHz */
#define TICKS 100

static volatile u64 ticks, lost, backwards, last_time, deadline;

void m_trap(struct frame *f)
{
    u64 cause = csr_read(mcause);
    if (cause != ((1UL << 63) | 7)) {
        puts("timer: unexpected trap ");
        put_hex(cause);
        puts(" at ");
        put_hex(f->epc);
        puts("\n");
        finish(3);
    }
    u64 now = REG64(CLINT_MTIME);
    if (now < last_time)
        backwards++;
    last_time = now;
    ticks++;
    deadline += PERIOD;
    while (deadline <= now) {
        lost++;
        deadline += PERIOD;
    }
    REG64(CLINT_MTIMECMP) = deadline;
}

int main(void)
{
    csr_write(mtvec, m_trap_entry);
    last_time = REG64(CLINT_MTIME);
    deadline = last_time + PERIOD;
    REG64(CLINT_MTIMECMP) = deadline;
    csr_set(mie, 1UL << 7);
    csr_set(mstatus, 1UL << 3);
    while (ticks < TICKS) {
        u64 a = REG64(CLINT_MTIME);
        u64 b = REG64(CLINT_MTIME);
        if (b < a)
            backwards++;
        __asm__ volatile("wfi");
    }
    csr_clear(mstatus, 1UL << 3);
    csr_clear(mie, 1UL << 7);
    puts("timer: ");
    put_dec(ticks);
    puts(" ticks at 100 Hz\n");
    puts("timer: lost ticks ");
    put_dec(lost);
    puts(", time went backwards ");
    put_dec(backwards);
    puts("\n");
    return backwards != 0 || lost > 2;
}
