#!/bin/sh
# CPU benchmark: emupanel's interpreter vs qemu-system-riscv64 (TCG), same run.
#  1. guests/bench.elf on both: MIPS (instructions / wall seconds; QEMU's
#     start-up cost is removed by also timing bench-quick.elf and using the
#     difference; both guests retire the same instruction stream on both).
#  2. Time from process start to U-Boot's "=>" prompt (OpenSBI fw_jump +
#     S-mode U-Boot), pressing a key at "Hit any key to stop autoboot".
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

n_big, cpu_s, out_ours = instructions("guests/bench.elf")
n_small, _, _ = instructions("guests/bench-quick.elf")
ours_big = best([run, "run", "--machine", "virt", "--bios", "none", "--kernel", "guests/bench.elf"])
ours_small = best([run, "run", "--machine", "virt", "--bios", "none", "--kernel", "guests/bench-quick.elf"])
q = [qemu, "-M", "virt", "-nographic", "-bios", "none", "-kernel"]
qemu_big = best(q + ["guests/bench.elf"])
qemu_small = best(q + ["guests/bench-quick.elf"])
out_qemu = timed(q + ["guests/bench.elf"])[1].stdout
ours_mips = (n_big - n_small) / (ours_big - ours_small) / 1e6
qemu_mips = (n_big - n_small) / (qemu_big - qemu_small) / 1e6
print(f"benchmark guest: {n_big} instructions, output {'identical' if out_ours == out_qemu else 'DIFFERS'}")
print(f"  emupanel: {ours_mips:7.0f} MIPS  (CPU thread alone: {n_big / cpu_s / 1e6:.0f} MIPS)")
print(f"  qemu TCG: {qemu_mips:7.0f} MIPS")
print(f"  ratio emupanel/qemu: {ours_mips / qemu_mips:.2f}")

def to_prompt(cmd):
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
        if not sent and b"Hit any key" in buf:
            p.stdin.write(b"\n"); p.stdin.flush(); sent = True
        if sent and b"=> " in buf:
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
PY
