#!/bin/sh
# The Linux guest (guests/linux/build.sh: Linux 6.1, the project's init and shell) idle at its
# shell, emupanel against qemu-system-riscv64 (TCG) on the same kernel, initramfs and command
# line, 128 MiB, same run:
#   boot      start to the shell's first prompt: emupanel POST /guests/{id}/start to "# " on the
#             console (its 256 MiB-image guest, 64 MiB disk here, made beforehand); QEMU spawn to
#             "# " on its serial file (OpenSBI fw_jump, -cpu rv64 without F/D like our core)
#   snapshot  emupanel POST /snapshots (task wall clock; its pause is the task's pauseMs; the disk's
#             overlay is frozen and a new one started); QEMU migrate "exec:cat > FILE" + sync
#             (downtime from query-migrate; no disk: QEMU's snapshot to a file carries none)
#   restore   emupanel POST /snapshots/{name}/restore (fresh overlay + state); QEMU -incoming
#             "exec:cat FILE" from spawn until loaded
#   migrate   emupanel -> emupanel on loopback with the disk's chain (total-time, downtime, wall,
#             disk bytes); QEMU -> QEMU tcp, downtime limit 300 ms, bandwidth cap lifted, no disk
# Usage: bench/linux.sh [ROUNDS]   (default 3; min-max shown)
BENCH=linux . "$(dirname "$0")/prepare.sh"
LINUX=$(guests/linux/build.sh --print-dir) || { echo "the Linux guest is not built: make linux" >&2; exit 1; }

python3 - "$BIN" "$QEMU" "$ROUNDS" "$RUN_SECONDS" "$OUT" "linux" "$LINUX" <<'PY'
import json, os, socket, subprocess, sys, time
sys.path.insert(0, os.path.abspath("bench"))
from benchlib import Panel, QMP, cleanup, procs, qemu_serial, settings, span, stop, wait_for
BIN, QEMU, ROUNDS, RUN_S, OUT, _ = settings()
LINUX = sys.argv[7]
APPEND = "console=ttyS0 initramfs_async=0"
PROMPT = "\n# "

def qemu_linux(tag, *extra):
    sock = os.path.join(OUT, f"qmp-{tag}.sock")
    serial = open(os.path.join(OUT, f"serial-{tag}.txt"), "wb")
    p = subprocess.Popen([QEMU, "-M", "virt", "-cpu", "rv64,f=false,d=false,h=false", "-smp", "1", "-m", "128M",
                          "-bios", "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.bin",
                          "-kernel", LINUX + "/Image", "-initrd", LINUX + "/initramfs.cpio", "-append", APPEND,
                          "-display", "none", "-serial", "stdio", "-monitor", "none", "-nic", "none",
                          "-qmp", f"unix:{sock},server=on,wait=off", *extra],
                         stdin=subprocess.DEVNULL, stdout=serial, stderr=subprocess.STDOUT)
    procs.append(p)
    return p, sock

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close(); return port

def at_prompt(read, count=1):
    return lambda: read().count(PROMPT) >= count

def wait_until(predicate, timeout, what):
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline: raise SystemExit(f"{what}: timed out")
        time.sleep(0.01)

def ours(src, dst, rnd):
    r = {}
    gid = src.req("POST", "/guests", {"name": f"linux{rnd}", "image": "linux", "machineType": "virt", "memoryMiB": 128,
                                      "diskSizeBytes": 64 << 20})["id"]
    t0 = time.perf_counter()
    src.req("POST", f"/guests/{gid}/start")
    wait_until(at_prompt(lambda: src.console(gid)), 300, "emupanel boot")
    r["boot"] = time.perf_counter() - t0
    time.sleep(1)  # idle at its shell
    since = src.seq(); t0 = time.perf_counter()
    task, t1 = src.task(src.req("POST", f"/guests/{gid}/snapshots", {"name": "s"}), since)
    if task["status"] != "succeeded": raise SystemExit(f"snapshot: {task}")
    r.update(snap=t1 - t0, snap_pause=task["detail"]["pauseMs"], snap_size=task["detail"]["sizeBytes"])
    since = src.seq(); t0 = time.perf_counter()
    task, t1 = src.task(src.req("POST", f"/guests/{gid}/snapshots/s/restore"), since)
    if task["status"] != "succeeded": raise SystemExit(f"restore: {task}")
    r["restore"] = t1 - t0
    time.sleep(1)
    since = src.seq(); t0 = time.perf_counter()
    task, t1 = src.task(src.req("POST", f"/guests/{gid}/migrate", {"target": {"url": dst.url, "token": dst.token},
                                                                   "downtimeLimitMs": 300}), since)
    if task["status"] != "succeeded": raise SystemExit(f"migrate: {json.dumps(task)}")
    d = task["detail"]
    r.update(mig_wall=t1 - t0, mig_total=d["total-time"], mig_down=d["downtime"], mig_ram=d["ram"]["transferred"],
             mig_disk=d["disk"]["transferred"])
    did = d["destinationGuestId"]
    # the shell answers at the destination
    dst.req("POST", f"/guests/{did}/console", {"data": "uname\n"})
    wait_until(lambda: "Linux" in dst.console(did), 60, "the migrated guest's shell")
    dst.req("POST", f"/guests/{did}/stop"); dst.req("DELETE", f"/guests/{did}")
    src.req("DELETE", f"/guests/{gid}")
    return r

def theirs(rnd):
    r = {}
    t0 = time.perf_counter()
    p, sock = qemu_linux(f"src{rnd}")
    wait_until(at_prompt(lambda: qemu_serial(OUT, f"src{rnd}")), 300, "qemu boot")
    r["boot"] = time.perf_counter() - t0
    q = QMP(sock)
    time.sleep(1)
    q.prepare_migration(**{"max-bandwidth": 1 << 40, "downtime-limit": 300})
    qfile = os.path.join(OUT, "qemu.mig")
    t0 = time.perf_counter()
    m, _ = q.migrate(f"exec:cat > {qfile}")
    os.system(f"sync {qfile} 2>/dev/null || sync")
    r.update(snap=time.perf_counter() - t0, snap_pause=m.get("downtime", 0), snap_size=os.path.getsize(qfile))
    stop(p)
    t0 = time.perf_counter()
    p, sock = qemu_linux(f"restored{rnd}", "-incoming", f"exec:cat {qfile}")
    QMP(sock).wait_loaded()
    r["restore"] = time.perf_counter() - t0
    stop(p)
    port = free_port()
    dst, dsock = qemu_linux(f"dst{rnd}", "-incoming", f"tcp:127.0.0.1:{port}")
    QMP(dsock)
    src, sock = qemu_linux(f"msrc{rnd}")
    wait_until(at_prompt(lambda: qemu_serial(OUT, f"msrc{rnd}")), 300, "qemu boot")
    q = QMP(sock)
    time.sleep(1)
    q.prepare_migration(**{"max-bandwidth": 1 << 40, "downtime-limit": 300})
    t0 = time.perf_counter()
    m, t1 = q.migrate(f"tcp:127.0.0.1:{port}")
    r.update(mig_wall=t1 - t0, mig_total=m.get("total-time", 0), mig_down=m.get("downtime", 0),
             mig_ram=m.get("ram", {}).get("transferred", 0), mig_disk=0)
    stop(src); stop(dst)
    return r

rows = {"emupanel": [], "qemu": []}
src, dst = Panel(BIN, OUT, "src"), Panel(BIN, OUT, "dst")
for rnd in range(1, ROUNDS + 1):
    o, t = ours(src, dst, rnd), theirs(rnd)
    rows["emupanel"].append(o); rows["qemu"].append(t)
    print(f"round {rnd}: boot {o['boot']:.2f}/{t['boot']:.2f} s, snapshot {o['snap']:.3f}/{t['snap']:.3f} s "
          f"(pause {o['snap_pause']}/{t['snap_pause']} ms), restore {o['restore']:.3f}/{t['restore']:.3f} s, "
          f"migrate total {o['mig_total']}/{t['mig_total']} ms downtime {o['mig_down']}/{t['mig_down']} ms "
          f"(emupanel/qemu)", flush=True)
cleanup()
print()
print(f"Linux 6.1 idle at its shell, 128 MiB, {ROUNDS} rounds, min-max (emupanel with a 64 MiB ext4 disk; QEMU without)")
cols = [("boot", "boot→# s", "{:.2f}"), ("snap", "snapshot s", "{:.3f}"), ("snap_pause", "pause ms", "{:.0f}"),
        ("snap_size", "file MiB", None), ("restore", "restore s", "{:.3f}"), ("mig_wall", "migr. wall s", "{:.3f}"),
        ("mig_total", "total-time ms", "{:.0f}"), ("mig_down", "downtime ms", "{:.0f}"), ("mig_ram", "RAM MiB", None),
        ("mig_disk", "disk MiB", None)]
print(f"{'':10}" + "".join(f"{label:>15}" for _, label, _ in cols))
for name, rs in rows.items():
    cells = []
    for key, _, fmt in cols:
        values = [r[key] for r in rs]
        cells.append(span([v / 2**20 for v in values], "{:.1f}") if fmt is None else span(values, fmt))
    print(f"{name:10}" + "".join(f"{c:>15}" for c in cells))
med = lambda rs, k: sorted(r[k] for r in rs)[len(rs) // 2]
e, q = rows["emupanel"], rows["qemu"]
print(f"median ratios emupanel/qemu: boot {med(e, 'boot') / med(q, 'boot'):.2f}, snapshot {med(e, 'snap') / med(q, 'snap'):.2f}, "
      f"restore {med(e, 'restore') / med(q, 'restore'):.2f}, migration total-time {med(e, 'mig_total') / max(1, med(q, 'mig_total')):.2f}")
PY
