#!/bin/sh
# Host CPU of guests that do nothing: ten idle guests (guests/echo.elf, waiting for input in
# WFI with no timer armed), then the same ten paused, under one `emupanel serve`; beside them
# ten qemu-system-riscv64 running the same guest, then stopped (QMP `stop`). CPU is the
# processes' utime + stime from /proc over the measuring window, as % of one core.
# Usage: bench/idle.sh [SECONDS]   (default 10 per measurement)
BENCH=idle . "$(dirname "$0")/prepare.sh"
SECONDS_EACH=${1:-10}

python3 - "$BIN" "$QEMU" "$ROUNDS" "$SECONDS_EACH" "$OUT" <<'PY'
import os, sys, time
sys.path.insert(0, os.path.abspath("bench"))
from benchlib import Panel, QMP, cleanup, qemu
BIN, QEMU, SECONDS, OUT = sys.argv[1], sys.argv[2], float(sys.argv[4]), os.path.abspath(sys.argv[5])
ELF = os.path.abspath("guests/echo.elf")
GUESTS = 10
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])   # utime, stime (fields 14 and 15)
    return total / TICK


def share(pids):
    """% of one core the processes used over SECONDS."""
    c0, t0 = cpu_seconds(pids), time.perf_counter()
    time.sleep(SECONDS)
    return 100 * (cpu_seconds(pids) - c0) / (time.perf_counter() - t0)


def wait_for(predicate, what, timeout=60):
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)


try:
    panel = Panel(BIN, OUT, "panel")
    ids = []
    for i in range(GUESTS):
        g = panel.req("POST", "/guests", {"name": f"idle{i}", "image": "uart-echo", "machineType": "virt", "memoryMiB": 16})
        panel.req("POST", f"/guests/{g['id']}/start")
        ids.append(g["id"])
    wait_for(lambda: all("ready" in panel.console(g) for g in ids), "the guests to print ready")
    time.sleep(1)
    ours_idle = share([panel.p.pid])
    for g in ids:
        panel.req("POST", f"/guests/{g}/pause")
    time.sleep(1)
    ours_paused = share([panel.p.pid])

    qemus = []
    for i in range(GUESTS):
        p, sock = qemu(QEMU, OUT, ELF, f"idle{i}")
        qemus.append((p, QMP(sock)))
    wait_for(lambda: all("ready" in open(os.path.join(OUT, f"serial-idle{i}.txt"), errors="replace").read()
                         for i in range(GUESTS)), "qemu guests to print ready")
    time.sleep(1)
    qemu_idle = share([p.pid for p, _ in qemus])
    for _, q in qemus:
        q.cmd("stop")
    time.sleep(1)
    qemu_paused = share([p.pid for p, _ in qemus])
finally:
    cleanup()

print(f"host CPU, % of one core, over {SECONDS:.0f} s ({GUESTS} guests each; goal for emupanel < 1 %)")
print(f"  {GUESTS} idle (WFI):   emupanel {ours_idle:6.2f} %   qemu {qemu_idle:6.2f} % ({GUESTS} processes)")
print(f"  {GUESTS} paused:       emupanel {ours_paused:6.2f} %   qemu {qemu_paused:6.2f} % ({GUESTS} processes)")
PY
