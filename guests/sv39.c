/* sv39: M-mode builds Sv39 tables and drops to S-mode; S-mode checks page
 * faults (unmapped, non-canonical, SUM), hardware A/D updates, then runs
 * U-mode code from a user page that faults on a read-only page and on a
 * supervisor page and ends with ecall. Faults are delegated to S-mode
 * (medeleg); S-mode's ecall goes to M-mode, which reports. */
#include "guest.h"

#define USER_CODE_VA 0x40000000UL
#define USER_DATA_VA 0x40001000UL
#define USER_RO_VA   0x40002000UL
#define UNMAPPED_VA  0x40003000UL

static u64 root[512] __attribute__((aligned(4096)));
static u64 l1[512] __attribute__((aligned(4096)));
static u64 l0[512] __attribute__((aligned(4096)));
static u8 user_data[4096] __attribute__((aligned(4096)));
static u8 user_ro[4096] __attribute__((aligned(4096)));
extern char user_code[];

static volatile u64 last_cause, last_tval, faults, failures, user_a0, probing;

/* U-mode code: 4-byte instructions only, so a handler skips with epc += 4. */
__asm__(".section .user, \"ax\"\n"
        ".globl user_code\n"
        "user_code:\n"
        ".option push\n.option norvc\n"
        "li t0, 0x40001008\n"
        "li t1, 42\n"
        "sd t1, 0(t0)\n"
        "ld a0, 0(t0)\n"
        "li t0, 0x40002000\n"
        "sd t1, 0(t0)\n"        /* read-only page: store page fault */
        "li t0, 0x80000000\n"
        "ld t2, 0(t0)\n"        /* supervisor page: load page fault */
        "ecall\n"
        ".option pop\n"
        "1: j 1b\n"
        ".text\n");

static void check(const char *what, int ok)
{
    puts("sv39: ");
    puts(what);
    puts(ok ? " ok\n" : " FAILED\n");
    if (!ok)
        failures++;
}

static void expect_fault(const char *what, u64 cause, u64 tval)
{
    int ok = last_cause == cause && last_tval == tval;
    puts("sv39: ");
    puts(what);
    puts(" -> scause ");
    put_dec(last_cause);
    puts(" stval 0x");
    put_hex(last_tval);
    puts(ok ? " ok\n" : " FAILED\n");
    if (!ok)
        failures++;
    last_cause = last_tval = 0;
}

static inline u64 load64(u64 va)
{
    u64 v;
    __asm__ volatile(".option push\n.option norvc\nld %0, 0(%1)\n.option pop" : "=r"(v) : "r"(va) : "memory");
    return v;
}

static inline void store64(u64 va, u64 v)
{
    __asm__ volatile(".option push\n.option norvc\nsd %0, 0(%1)\n.option pop" :: "r"(v), "r"(va) : "memory");
}

static void s_after_user(void) __attribute__((noreturn));

void s_trap(struct frame *f)
{
    u64 cause = csr_read(scause);
    if (cause == 8) {   /* ecall from U: back to S-mode after the user run */
        user_a0 = f->x[9];
        csr_set(sstatus, 1UL << 8);   /* SPP = S */
        f->epc = (u64)s_after_user;
        return;
    }
    last_cause = cause;
    last_tval = csr_read(stval);
    faults++;
    f->epc += 4;
}

void m_trap(struct frame *f)
{
    u64 cause = csr_read(mcause);
    if (cause == 2 && probing) {   /* no PMP on this hart: nothing to open */
        f->epc += 4;
        return;
    }
    if (cause != 9) {
        puts("sv39: unexpected M-mode trap ");
        put_hex(cause);
        puts(" at ");
        put_hex(f->epc);
        puts(" mtval ");
        put_hex(csr_read(mtval));
        puts("\n");
        finish(3);
    }
    puts("sv39: ");
    put_dec(faults);
    puts(" page faults handled, ");
    put_dec(failures);
    puts(" failures\n");
    finish(failures ? 1 : 0);
}

static void s_after_user(void)
{
    check("U-mode store/load through user page", user_a0 == 42);
    check("A and D set by the hart on the user data page", (l0[1] & (PTE_A | PTE_D)) == (PTE_A | PTE_D));
    __asm__ volatile("ecall");
    for (;;)
        ;
}

static void s_main(void)
{
    puts("sv39: S-mode with paging on\n");
    (void)load64(UNMAPPED_VA);
    expect_fault("load from unmapped page", 13, UNMAPPED_VA);
    (void)load64(0x0000800000000000UL);
    expect_fault("load from non-canonical address", 13, 0x0000800000000000UL);
    store64(USER_DATA_VA, 7);
    expect_fault("S-mode store to U page without SUM", 15, USER_DATA_VA);
    check("user data PTE untouched before access", (l0[1] & (PTE_A | PTE_D)) == 0);
    csr_set(sstatus, 1UL << 18);  /* SUM */
    store64(USER_DATA_VA, 7);
    check("S-mode store to U page with SUM", load64(USER_DATA_VA) == 7 && user_data[0] == 7);
    csr_clear(sstatus, 1UL << 18);
    /* Run user code: SPP = U, sepc = user VA. */
    csr_clear(sstatus, 1UL << 8);
    csr_write(sepc, USER_CODE_VA);
    __asm__ volatile("sret");
    for (;;)
        ;
}

int main(void)
{
    root[0] = PTE(0, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);                    /* MMIO gigapage */
    root[2] = PTE(0x80000000UL, PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D); /* RAM gigapage */
    root[1] = PTE(l1, PTE_V);
    l1[0] = PTE(l0, PTE_V);
    l0[0] = PTE(user_code, PTE_V | PTE_R | PTE_X | PTE_U | PTE_A);
    l0[1] = PTE(user_data, PTE_V | PTE_R | PTE_W | PTE_U);   /* A, D clear */
    l0[2] = PTE(user_ro, PTE_V | PTE_R | PTE_U | PTE_A);

    csr_write(mtvec, m_trap_entry);
    /* Where PMP exists (QEMU has 16 entries), S/U may touch nothing until
     * an entry allows it: one NAPOT entry over everything, RWX. */
    open_pmp(&probing);
    csr_write(stvec, s_trap_entry);
    csr_write(medeleg, (1UL << 8) | (1UL << 12) | (1UL << 13) | (1UL << 15));
    csr_write(satp, (8UL << 60) | ((u64)root >> 12));
    __asm__ volatile("sfence.vma");
    /* mret to S-mode at s_main */
    csr_clear(mstatus, 3UL << 11);
    csr_set(mstatus, 1UL << 11);
    csr_write(mepc, s_main);
    __asm__ volatile("mret");
    return 1;
}
