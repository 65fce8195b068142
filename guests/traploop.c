/* traploop: the trap path an operating system lives on. U-mode (Sv39, user pages at an alias
 * of RAM) does a little work over a few data pages and makes a system call (ecall); S-mode's
 * handler saves every register, touches its own pages and returns with sret; every 8th call it
 * makes an SBI-style ecall to M-mode, which returns with mret. So every round crosses U -> S ->
 * U, some U -> S -> M -> S -> U, with translations in use on both sides of each switch.
 * Prints counts and a checksum that depend only on the instructions executed. */
#include "guest.h"

#ifndef ROUNDS
#define ROUNDS 200000
#endif

/* RAM seen by U-mode: a user gigapage at 0x40000000 backed by RAM at 0x80000000. */
#define USER_ALIAS(p) ((u64)(p) - 0x80000000UL + 0x40000000UL)

#define SYS_WORK 1
#define SYS_EXIT 93

static u64 root[512] __attribute__((aligned(4096)));
static u64 l1[512] __attribute__((aligned(4096)));
static u64 user_pages[4][512] __attribute__((aligned(4096)));
static u64 kernel_pages[2][512] __attribute__((aligned(4096)));
static u64 user_stack[1024] __attribute__((aligned(4096)));
static u64 kernel_stack[1024] __attribute__((aligned(16)));
static volatile u64 syscalls, sbi_calls, kernel_sum, probing;

/* S-mode trap entry as a kernel has it: sscratch holds the kernel stack while U-mode runs,
 * so the frame (struct frame, every register) never lands in user memory. */
extern char s_entry[];
__asm__(".text\n.balign 4\n.globl s_entry\ns_entry:\n"
        "csrrw sp, sscratch, sp\n"
        "addi sp, sp, -256\n"
        ".irp n,1,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
        "sd x\\n, (8*\\n)(sp)\n.endr\n"
        "csrr t0, sepc\nsd t0, 0(sp)\ncsrr t0, sscratch\nsd t0, 16(sp)\n"
        "mv a0, sp\ncall s_trap\n"
        "ld t0, 0(sp)\ncsrw sepc, t0\n"
        ".irp n,1,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
        "ld x\\n, (8*\\n)(sp)\n.endr\n"
        "addi sp, sp, 256\n"
        "csrrw sp, sscratch, sp\n"
        "sret\n");

/* Runs in U-mode at its user alias: pc-relative code and data only (medany). */
__attribute__((noinline)) static u64 user_call(u64 nr, u64 arg)
{
    register u64 a0 __asm__("a0") = arg;
    register u64 a7 __asm__("a7") = nr;
    __asm__ volatile("ecall" : "+r"(a0) : "r"(a7) : "memory");
    return a0;
}

static void user_main(void)
{
    u64 acc = 0x9E3779B97F4A7C15UL;
    for (u64 r = 0; r < ROUNDS; r++) {
        u64 *p = user_pages[r & 3];
        u64 i = (r * 5) & 511;
        acc ^= p[i] + r;
        p[i] = acc;
        acc = acc * 0x100000001B3UL + user_call(SYS_WORK, r);
    }
    user_call(SYS_EXIT, acc);
    for (;;)
        ;
}

static void unexpected(const char *mode, u64 cause)
{
    puts("traploop: unexpected ");
    puts(mode);
    puts("-mode trap ");
    put_hex(cause);
    puts("\n");
    finish(3);
}

void s_trap(struct frame *f)
{
    u64 cause = csr_read(scause);
    if (cause != 8)   /* ecall from U */
        unexpected("S", cause);
    f->epc += 4;
    u64 nr = f->x[16], arg = f->x[9];   /* a7, a0 */
    if (nr == SYS_EXIT) {
        puts("traploop: ");
        put_dec(syscalls);
        puts(" system calls, ");
        put_dec(sbi_calls);
        puts(" SBI calls, checksum ");
        put_hex(arg ^ kernel_sum);
        puts("\n");
        finish(0);
    }
    syscalls++;
    u64 *k = kernel_pages[arg & 1];
    k[arg & 511] += arg;
    kernel_sum += k[(arg * 3) & 511];
    if ((arg & 7) == 7) {
        register u64 a0 __asm__("a0") = arg;
        __asm__ volatile("ecall" : "+r"(a0) :: "memory");
        kernel_sum ^= a0;
    }
    f->x[9] = kernel_sum & 0xffff;
}

void m_trap(struct frame *f)
{
    u64 cause = csr_read(mcause);
    switch (cause) {
    case 9:   /* the SBI-style call from S */
        sbi_calls++;
        f->x[9] = f->x[9] * 3 + 1;   /* a0 */
        break;
    case 2:   /* csrw pmpaddr0 on a hart without PMP: there is nothing to open */
        if (probing)
            break;
        /* fall through */
    default:
        unexpected("M", cause);
    }
    f->epc += 4;
}

static void s_main(void)
{
    csr_write(stvec, s_entry);
    csr_write(sscratch, kernel_stack + 1024);
    csr_clear(sstatus, 1UL << 8);   /* SPP = U */
    csr_write(sepc, USER_ALIAS(user_main));
    __asm__ volatile("mv sp, %0\n sret" :: "r"(USER_ALIAS(user_stack + 1024)));
}

int main(void)
{
    root[0] = PTE(0, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);   /* MMIO gigapage */
    root[1] = PTE(0x80000000UL, PTE_V | PTE_R | PTE_W | PTE_X | PTE_U | PTE_A | PTE_D);
    root[2] = PTE(l1, PTE_V);                                   /* RAM in megapages */
    for (u64 i = 0; i < 512; i++)
        l1[i] = PTE(0x80000000UL + (i << 21), PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D);

    csr_write(mtvec, m_trap_entry);
    open_pmp(&probing);
    csr_write(medeleg, 1UL << 8);                               /* ecall from U -> S */
    enter_s_mode(root, s_main);
}
