/* echo: UART receive FIFO + RX interrupts through the PLIC (M-mode
 * context). Echoes every byte until 'q', then prints the count. */
#include "guest.h"

static volatile u64 received, done;

void m_trap(struct frame *f)
{
    u64 cause = csr_read(mcause);
    if (cause != ((1UL << 63) | 11)) {
        puts("echo: unexpected trap ");
        put_hex(cause);
        puts(" at ");
        put_hex(f->epc);
        puts("\n");
        finish(3);
    }
    u32 irq = REG32(PLIC + 0x200004);           /* claim */
    if (irq == UART0_IRQ) {
        while (REG8(UART0 + 5) & 1) {           /* LSR.DR */
            u8 c = REG8(UART0);
            received++;
            if (c == 'q')
                done = 1;
            else
                putc((char)c);
        }
    }
    REG32(PLIC + 0x200004) = irq;               /* complete */
}

int main(void)
{
    REG8(UART0 + 2) = 0x01;                     /* FCR: FIFO on, trigger 1 */
    REG8(UART0 + 1) = 0x01;                     /* IER: received data */
    REG32(PLIC + 4 * UART0_IRQ) = 1;            /* priority */
    REG32(PLIC + 0x2000) = 1u << UART0_IRQ;     /* enable, context 0 (M) */
    REG32(PLIC + 0x200000) = 0;                 /* threshold */
    csr_write(mtvec, m_trap_entry);
    csr_set(mie, 1UL << 11);
    puts("echo: ready, 'q' quits\n");
    csr_set(mstatus, 1UL << 3);
    while (!done)
        __asm__ volatile("wfi");
    csr_clear(mstatus, 1UL << 3);
    puts("\necho: ");
    put_dec(received);
    puts(" bytes\n");
    return 0;
}
