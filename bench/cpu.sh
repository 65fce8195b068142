#!/bin/sh
# CPU benchmark: emupanel's interpreter vs qemu-system-riscv64 (TCG), same run.
#  1. guests/bench.elf on both: MIPS (instructions / wall seconds; QEMU's
#     start-up cost is removed by also timing bench-quick.elf and using the
#     difference; both guests retire the same instruction stream on both).
#  2. guests/traploop.elf the same way: U-mode system calls into an S-mode
#     kernel under Sv39, some going on to M-mode (every round is two or four
#     privilege switches).
#  3. Time from process start to U-Boot's "=>" prompt (OpenSBI fw_jump +
#     S-mode U-Boot), pressing a key at "Hit any key to stop autoboot".
#  4. With LINUX_KERNEL set (an Image for OpenSBI fw_jump; LINUX_APPEND, default
#     "console=ttyS0", and LINUX_PROMPT, default "# ", may be set too): time from
#     process start to the shell prompt on both.
# Usage: bench/cpu.sh [RUNS]   (default 3; best run is reported)
set -eu
cd "$(dirname "$0")/.."
RUNS=${1:-3}
QEMU=${QEMU:-qemu-system-riscv64}
BIOS=/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.bin
UBOOT=/usr/lib/u-boot/qemu-riscv64_smode/u-boot.bin

swift build -c release --product emupanel >/dev/null
RUN="$(swift build -c release --show-bin-path)/emupanel"

python3 - "$RUN" "$QEMU" "$RUNS" "$BIOS" "$UBOOT" <<'PY'
import os, re, select, subprocess, sys, time
run, qemu, runs, bios, uboot = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
linux = os.environ.get("LINUX_KERNEL")

def timed(cmd):
    t = time.perf_counter()
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True)
    return time.perf_counter() - t, p

def instructions(elf):
    _, p = timed([run, "run", "--machine", "virt", "--bios", "none", "--kernel", elf, "--stats"])
    m = re.search(rb"(\d+) instructions in ([0-9.]+) s", p.stderr)
    return int(m.group(1)), float(m.group(2)), p.stdout

def best(cmd):
    return min(timed(cmd)[0] for _ in range(runs))

def mips(name, big, small):
    """MIPS of both on `big`, start-up removed by timing `small` too (same instruction stream on both)."""
    n_big, cpu_s, out_ours = instructions(big)
    n_small, _, _ = instructions(small)
    ours_big = best([run, "run", "--machine", "virt", "--bios", "none", "--kernel", big])
    ours_small = best([run, "run", "--machine", "virt", "--bios", "none", "--kernel", small])
    q = [qemu, "-M", "virt", "-nographic", "-bios", "none", "-kernel"]
    qemu_big = best(q + [big])
    qemu_small = best(q + [small])
    out_qemu = timed(q + [big])[1].stdout
    ours_mips = (n_big - n_small) / (ours_big - ours_small) / 1e6
    qemu_mips = (n_big - n_small) / (qemu_big - qemu_small) / 1e6
    print(f"{name}: {n_big} instructions, output {'identical' if out_ours == out_qemu else 'DIFFERS'}")
    print(f"  emupanel: {ours_mips:7.0f} MIPS  (CPU thread alone: {n_big / cpu_s / 1e6:.0f} MIPS)")
    print(f"  qemu TCG: {qemu_mips:7.0f} MIPS")
    print(f"  ratio emupanel/qemu: {ours_mips / qemu_mips:.2f}")

mips("benchmark guest", "guests/bench.elf", "guests/bench-quick.elf")
mips("trap loop", "guests/traploop.elf", "guests/traploop-quick.elf")

def to_prompt(cmd, prompt=b"=> ", key_at=b"Hit any key"):
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    buf, sent, result = b"", False, None
    while True:
        r, _, _ = select.select([p.stdout], [], [], 30)
        if not r:
            break
        d = os.read(p.stdout.fileno(), 65536)
        if not d:
            break
        buf += d
        if not sent and (key_at is None or key_at in buf):
            if key_at is not None:
                p.stdin.write(b"\n"); p.stdin.flush()
            sent = True
        if sent and prompt in buf:
            result = time.perf_counter() - t0
            break
    p.kill(); p.wait()
    return result

if os.path.exists(bios) and os.path.exists(uboot):
    ours = [to_prompt([run, "run", "--machine", "virt", "--kernel", uboot]) for _ in range(runs)]
    theirs = [to_prompt([qemu, "-M", "virt", "-nographic", "-bios", bios, "-kernel", uboot]) for _ in range(runs)]
    o, t = min(x for x in ours if x), min(x for x in theirs if x)
    print(f"time to U-Boot prompt: emupanel {o:.3f} s, qemu {t:.3f} s (ratio {o / t:.2f}; best of {runs})")
else:
    print("time to U-Boot prompt: skipped (opensbi or u-boot-qemu not installed)")

if linux:
    append = os.environ.get("LINUX_APPEND", "console=ttyS0")
    prompt = os.environ.get("LINUX_PROMPT", "# ").encode()
    ours = [to_prompt([run, "run", "--machine", "virt", "--kernel", linux], prompt, None) for _ in range(runs)]
    theirs = [to_prompt([qemu, "-M", "virt", "-nographic", "-bios", bios, "-kernel", linux, "-append", append],
                        prompt, None) for _ in range(runs)]
    if all(x is None for x in ours) or all(x is None for x in theirs):
        print(f"time to Linux shell: no prompt seen (emupanel {ours}, qemu {theirs})")
    else:
        o, t = min(x for x in ours if x), min(x for x in theirs if x)
        print(f"time to Linux shell: emupanel {o:.3f} s, qemu {t:.3f} s (ratio {o / t:.2f}; best of {runs})")
PY
