#!/bin/sh
# Snapshot save and restore: emupanel against qemu-system-riscv64 (TCG) and dd, same run.
# Both run guests/mempattern-forever.elf (dirties one byte of every page of a 16 MiB region,
# over and over) in a 1 GiB virt guest for the same few seconds, then:
#   save:    emupanel POST /guests/{id}/snapshots (POST to the task's "succeeded" event, long poll)
#            QEMU     migrate "exec:cat > FILE" (QMP, to its MIGRATION "completed" event; bandwidth limit
#                     lifted to match emupanel's unlimited default, downtime limit left at 300 ms)
#            dd       the same number of bytes as emupanel's file, from /dev/urandom staged in
#                     RAM (so no zero tricks and no RNG cost in the timing), conv=fsync
#   restore: emupanel POST /guests/{id}/snapshots/{name}/restore (task wall clock)
#            QEMU     a new process with -incoming "exec:cat FILE", spawn until query-status is
#                     running (includes process start-up, shown separately)
# All files go to one directory on the same filesystem (bench/out/snapshot).
# Goals (issue 5): save at least as fast as QEMU and within 2x of dd.
# Usage: bench/snapshot.sh [ROUNDS]   (default 3; best and worst are shown)
BENCH=snapshot . "$(dirname "$0")/prepare.sh"

python3 - "$BIN" "$QEMU" "$ROUNDS" "$RUN_SECONDS" "$OUT" <<'PY'
import os, subprocess, sys, time
sys.path.insert(0, os.path.abspath("bench"))
from benchlib import Panel, QMP, cleanup, settings, mib_span, qemu, span, stop
BIN, QEMU, ROUNDS, RUN_S, OUT, ELF = settings()

rows = {k: [] for k in ("ours_save", "ours_pause", "ours_size", "ours_restore", "q_save", "q_down", "q_size",
                        "q_restore", "q_start", "dd", "ours_passes")}
panel = Panel(BIN, OUT, "panel")
g = panel.req("POST", "/guests", {"name": "bench", "image": "memory-pattern", "machineType": "virt", "memoryMiB": 1024})
gid = g["id"]
panel.req("POST", f"/guests/{gid}/start")
time.sleep(RUN_S)
assert "pass " in panel.console(gid), "guest made no progress: " + panel.console(gid)

for rnd in range(1, ROUNDS + 1):
    # emupanel save, with the guest running (and dirtying) as it has for RUN_S seconds
    since = panel.seq()
    t0 = time.perf_counter()
    task, t1 = panel.task(panel.req("POST", f"/guests/{gid}/snapshots", {"name": f"s{rnd}"}), since)
    if task["status"] != "succeeded": raise SystemExit(f"snapshot: {task}")
    d = task["detail"]
    rows["ours_save"].append(t1 - t0); rows["ours_pause"].append(d["pauseMs"]); rows["ours_size"].append(d["sizeBytes"])
    st = d.get("transfer", {})
    rows["ours_passes"].append(f'{st.get("ram", {}).get("dirty-sync-count", "?")} syncs, setup {st.get("setup-time", "?")} ms, stream {st.get("total-time", "?")} ms')
    time.sleep(0.5)
    # emupanel restore
    since = panel.seq()
    t0 = time.perf_counter()
    task, t1 = panel.task(panel.req("POST", f"/guests/{gid}/snapshots/s{rnd}/restore"), since)
    if task["status"] != "succeeded": raise SystemExit(f"restore: {task}")
    rows["ours_restore"].append(t1 - t0)
    time.sleep(RUN_S)   # it runs on from the snapshot and dirties again before the next round
    if "holds" in panel.console(gid): raise SystemExit("memory-pattern check failed after restore:\n" + panel.console(gid))

    # QEMU save: same guest, same run time, to a file on the same filesystem
    qfile = os.path.join(OUT, "qemu.mig")
    p, sock = qemu(QEMU, OUT, ELF, f"src{rnd}")
    q = QMP(sock)
    time.sleep(RUN_S)
    q.prepare_migration(**{"max-bandwidth": 1 << 40, "downtime-limit": 300})
    t0 = time.perf_counter()
    m, _ = q.migrate(f"exec:cat > {qfile}")
    os.system(f"sync {qfile} 2>/dev/null || sync")   # QEMU does not fsync; charge it the flush
    t2 = time.perf_counter()
    rows["q_save"].append(t2 - t0); rows["q_down"].append(m.get("downtime", 0)); rows["q_size"].append(os.path.getsize(qfile))
    stop(p)
    # QEMU start-up alone (spawn to QMP answering), to put restore in context
    t0 = time.perf_counter()
    p, sock = qemu(QEMU, OUT, ELF, f"bare{rnd}", "-S")
    QMP(sock).cmd("query-status")
    rows["q_start"].append(time.perf_counter() - t0)
    stop(p)
    # QEMU restore: -incoming exec, spawn to running
    t0 = time.perf_counter()
    p, sock = qemu(QEMU, OUT, ELF, f"dst{rnd}", "-incoming", f"exec:cat {qfile}")
    q = QMP(sock, timeout=120)
    while q.cmd("query-status")["status"] != "running":
        time.sleep(0.005)
    rows["q_restore"].append(time.perf_counter() - t0)
    stop(p)
    os.unlink(qfile)

    # dd: the bytes of emupanel's file, random, staged in RAM, fsync'd to the same filesystem
    n = rows["ours_size"][-1]
    src = "/dev/shm/emupanel-bench-dd.src"
    subprocess.run(["dd", "if=/dev/urandom", f"of={src}", "bs=1M", f"count={(n + (1 << 20) - 1) >> 20}",
                    "iflag=fullblock", "status=none"], check=True)
    dst = os.path.join(OUT, "dd.out")
    t0 = time.perf_counter()
    subprocess.run(["dd", f"if={src}", f"of={dst}", "bs=1M", "conv=fsync", "status=none"], check=True)
    rows["dd"].append(time.perf_counter() - t0)
    os.unlink(src); os.unlink(dst)
    print(f"round {rnd}: emupanel save {rows['ours_save'][-1]:.3f} s ({rows['ours_passes'][-1]}, pause {rows['ours_pause'][-1]} ms, "
          f"{rows['ours_size'][-1] / 2**20:.1f} MiB), restore {rows['ours_restore'][-1]:.3f} s | "
          f"qemu save {rows['q_save'][-1]:.3f} s (downtime {rows['q_down'][-1]} ms, {rows['q_size'][-1] / 2**20:.1f} MiB), "
          f"restore {rows['q_restore'][-1]:.3f} s | dd {rows['dd'][-1]:.3f} s", flush=True)

cleanup()
if "holds" in open(os.path.join(OUT, "panel/serve.out")).read(): print("note: the panel log mentions a failed check")
for f in os.listdir(OUT):
    if f.startswith("serial-") and b"holds" in open(os.path.join(OUT, f), "rb").read():
        print(f"note: QEMU guest check failed in {f}")

rng = lambda k, fmt="{:.3f}": span(rows[k], fmt)
mib = lambda k: mib_span(rows[k])
best = lambda k: min(rows[k])
print()
print(f"1 GiB virt guest, mempattern-forever.elf running {RUN_S:g} s; {ROUNDS} rounds, min-max")
print(f"{'':10} {'save s':>13} {'pause/downtime ms':>18} {'restore s':>13} {'file MiB':>10}")
print(f"{'emupanel':10} {rng('ours_save'):>13} {rng('ours_pause', '{:.0f}'):>18} {rng('ours_restore'):>13} {mib('ours_size'):>10}")
print(f"{'qemu 7.2':10} {rng('q_save'):>13} {rng('q_down', '{:.0f}'):>18} {rng('q_restore'):>13} {mib('q_size'):>10}")
print(f"{'dd':10} {rng('dd'):>13} {'':>18} {'':>13} {mib('ours_size'):>10}")
print(f"qemu restore is spawn to running and includes start-up; start-up alone (spawn to QMP answering, -S): {rng('q_start')} s")
print("emupanel save = POST to task succeeded (pre-copy passes, pause, SHA-256, fsync, rename);"
      " qemu save = migrate to completed + sync of the file")
per_round = lambda a, b: "-".join(dict.fromkeys(f"{f(x / y for x, y in zip(rows[a], rows[b])):.2f}" for f in (min, max)))
print(f"per-round ratios: save emupanel/qemu {per_round('ours_save', 'q_save')}, emupanel/dd {per_round('ours_save', 'dd')}")
print(f"best-of ratios: save emupanel/qemu {best('ours_save') / best('q_save'):.2f} (goal <= 1), "
      f"emupanel/dd {best('ours_save') / best('dd'):.2f} (goal <= 2), "
      f"restore emupanel/qemu {best('ours_restore') / best('q_restore'):.2f}")
PY
