/* Shared helpers of the bare-metal guests: QEMU virt addresses, UART
 * output, finisher, CSR access. */
#ifndef GUEST_H
#define GUEST_H

typedef unsigned long u64;
typedef long i64;
typedef unsigned int u32;
typedef unsigned char u8;

#define UART0      0x10000000UL
#define FINISHER   0x00100000UL
#define CLINT      0x02000000UL
#define CLINT_MTIMECMP (CLINT + 0x4000)
#define CLINT_MTIME    (CLINT + 0xbff8)
#define PLIC       0x0c000000UL
#define UART0_IRQ  10

#define REG8(a)  (*(volatile u8 *)(a))
#define REG32(a) (*(volatile u32 *)(a))
#define REG64(a) (*(volatile u64 *)(a))

#define csr_read(csr) ({ u64 __v; __asm__ volatile("csrr %0, " #csr : "=r"(__v)); __v; })
#define csr_write(csr, v) __asm__ volatile("csrw " #csr ", %0" :: "r"((u64)(v)))
#define csr_set(csr, v) __asm__ volatile("csrs " #csr ", %0" :: "r"((u64)(v)))
#define csr_clear(csr, v) __asm__ volatile("csrc " #csr ", %0" :: "r"((u64)(v)))

struct frame { u64 epc; u64 x[31]; };  /* x[i] holds register i+1 */

void putc(char c);
void puts(const char *s);
void put_hex(u64 v);
void put_dec(u64 v);
void finish(int code) __attribute__((noreturn));
void *memset(void *d, int c, u64 n);
void *memcpy(void *d, const void *s, u64 n);

extern char m_trap_entry[], s_trap_entry[];

/* Sv39 page-table entries (priv. spec §4.3.1, §4.4.1). */
#define PTE_V (1UL << 0)
#define PTE_R (1UL << 1)
#define PTE_W (1UL << 2)
#define PTE_X (1UL << 3)
#define PTE_U (1UL << 4)
#define PTE_A (1UL << 6)
#define PTE_D (1UL << 7)
#define PTE(pa, flags) ((((u64)(pa)) >> 12) << 10 | (flags))

/* One all-covering NAPOT PMP entry, so S and U-mode may reach memory on QEMU, which implements
 * PMP. A hart without PMP (emupanel) traps the writes as illegal instructions: the guest's
 * M-mode handler skips them while *probing is set. */
static inline void open_pmp(volatile u64 *probing)
{
    *probing = 1;
    csr_write(pmpaddr0, ~0UL >> 10);
    csr_write(pmpcfg0, 0x1f);
    *probing = 0;
}

/* Sv39 on with `root` as the root table, then mret into S-mode at `entry`. */
static inline void __attribute__((noreturn)) enter_s_mode(u64 *root, void (*entry)(void))
{
    csr_write(satp, (8UL << 60) | ((u64)root >> 12));
    __asm__ volatile("sfence.vma");
    csr_clear(mstatus, 3UL << 11);
    csr_set(mstatus, 1UL << 11);   /* MPP = S */
    csr_write(mepc, entry);
    __asm__ volatile("mret");
    __builtin_unreachable();
}

#endif
