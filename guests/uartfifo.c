/* uartfifo: reports the UART's receive FIFO depth as a guest sees it. With
 * FIFOs enabled, IIR bits 7:6 read 11 (16550A); bit 5 is set when the FIFO
 * is 64 bytes deep (16750's "64-byte FIFO enabled"), which virt-1.1 offers
 * and virt-1.0 (like QEMU's 16550A) does not. */
#include "guest.h"

int main(void)
{
    REG8(UART0 + 2) = 0x01;                     /* FCR: FIFO on */
    u8 iir = REG8(UART0 + 2);
    puts("uartfifo: IIR ");
    put_hex(iir);
    puts(", receive FIFO ");
    if ((iir & 0xc0) != 0xc0) {
        puts("off\n");
        return 1;
    }
    put_dec((iir & 0x20) ? 64 : 16);
    puts(" bytes\n");
    return 0;
}
