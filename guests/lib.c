/* UART output (polling LSR.THRE), number printing and the finisher. */
#include "guest.h"

void putc(char c)
{
    while ((REG8(UART0 + 5) & 0x20) == 0)
        ;
    REG8(UART0) = (u8)c;
}

void puts(const char *s)
{
    while (*s) {
        if (*s == '\n')
            putc('\r');
        putc(*s++);
    }
}

void put_hex(u64 v)
{
    static const char digits[] = "0123456789abcdef";
    char buf[17];
    for (int i = 15; i >= 0; i--) {
        buf[i] = digits[v & 15];
        v >>= 4;
    }
    buf[16] = 0;
    int start = 0;
    while (start < 15 && buf[start] == '0')
        start++;
    puts(buf + start);
}

void put_dec(u64 v)
{
    char buf[21];
    int i = 20;
    buf[i] = 0;
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    puts(buf + i);
}

/* sifive_test: 0x5555 pass, code << 16 | 0x3333 fail. */
void finish(int code)
{
    if (code == 0)
        REG32(FINISHER) = 0x5555;
    else
        REG32(FINISHER) = ((u32)code << 16) | 0x3333;
    for (;;)
        __asm__ volatile("wfi");
}

void *memset(void *d, int c, u64 n)
{
    u8 *p = d;
    while (n--)
        *p++ = (u8)c;
    return d;
}

void *memcpy(void *d, const void *s, u64 n)
{
    u8 *p = d;
    const u8 *q = s;
    while (n--)
        *p++ = *q++;
    return d;
}

__attribute__((weak)) void m_trap(struct frame *f)
{
    puts("unexpected M-mode trap mcause=");
    put_hex(csr_read(mcause));
    puts(" mepc=");
    put_hex(f->epc);
    puts(" mtval=");
    put_hex(csr_read(mtval));
    puts("\n");
    finish(99);
}

__attribute__((weak)) void s_trap(struct frame *f)
{
    (void)f;
    puts("unexpected S-mode trap\n");
    finish(98);
}
