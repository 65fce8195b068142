#!/bin/sh
# Live migration on loopback: emupanel -> emupanel against qemu-system-riscv64 (TCG) -> QEMU,
# same run. Both run guests/mempattern-forever.elf (dirties one byte of every page of a 16 MiB
# region, over and over) in a 1 GiB virt guest for the same few seconds, then migrate it with
# the default downtime limit of 300 ms:
#   emupanel  POST /guests/{id}/migrate {"target": {url, token}, "downtimeLimitMs": 300} to a
#             second `emupanel serve`; total-time and downtime from the task's query-migrate
#             figures, plus wall clock from the POST to its "task.succeeded" event (pre-flight,
#             ticket, hand-over)
#   QEMU      destination -incoming tcp:127.0.0.1:PORT, source migrate (QMP), downtime-limit
#             300; once with QEMU's default bandwidth limit (128 MiB/s) and once with it lifted
#             (emupanel's default on loopback is unlimited); total-time and downtime from
#             query-migrate, plus wall clock to its MIGRATION "completed" event
# Goal (issue 5): downtime <= 30 ms at the default limit.
# Usage: bench/migrate.sh [ROUNDS]   (default 3; min-max shown)
BENCH=migrate . "$(dirname "$0")/prepare.sh"

python3 - "$BIN" "$QEMU" "$ROUNDS" "$RUN_SECONDS" "$OUT" <<'PY'
import os, socket, sys, time
sys.path.insert(0, os.path.abspath("bench"))
from benchlib import Panel, QMP, cleanup, settings, mib_span, qemu, span
BIN, QEMU, ROUNDS, RUN_S, OUT, ELF = settings()

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close(); return port

def qemu_migrate(tag, bandwidth):  # -> (total-time ms, downtime ms, wall s, transferred bytes, passes)
    port = free_port()
    dst, dsock = qemu(QEMU, OUT, ELF, f"{tag}-dst", "-incoming", f"tcp:127.0.0.1:{port}")
    QMP(dsock)
    src, ssock = qemu(QEMU, OUT, ELF, f"{tag}-src")
    q = QMP(ssock)
    time.sleep(RUN_S)
    params = {"downtime-limit": 300}
    if bandwidth is not None: params["max-bandwidth"] = bandwidth
    q.prepare_migration(**params)
    t0 = time.perf_counter()
    m, t1 = q.migrate(f"tcp:127.0.0.1:{port}")
    wall = t1 - t0
    time.sleep(0.5)
    for p in (src, dst): p.kill(); p.wait()
    serial = open(os.path.join(OUT, f"serial-{tag}-dst.txt"), "rb").read()
    if b"holds" in serial: raise SystemExit(f"QEMU destination guest check failed: {serial[-300:]}")
    return m["total-time"], m["downtime"], wall, m["ram"]["transferred"], m["ram"].get("dirty-sync-count", 0)

rows = {k: [] for k in ("ours_total", "ours_down", "ours_wall", "ours_bytes", "ours_sync",
                        "qd_total", "qd_down", "qd_wall", "qd_bytes", "qd_sync",
                        "qu_total", "qu_down", "qu_wall", "qu_bytes", "qu_sync")}
src, dst = Panel(BIN, OUT, "src"), Panel(BIN, OUT, "dst")
for rnd in range(1, ROUNDS + 1):
    g = src.req("POST", "/guests", {"name": f"bench{rnd}", "image": "memory-pattern", "machineType": "virt",
                                    "memoryMiB": 1024})
    gid = g["id"]
    src.req("POST", f"/guests/{gid}/start")
    time.sleep(RUN_S)
    assert "pass " in src.console(gid), "guest made no progress: " + src.console(gid)
    since = src.seq()
    t0 = time.perf_counter()
    task, t1 = src.task(src.req("POST", f"/guests/{gid}/migrate",
                                {"target": {"url": dst.url, "token": dst.token}, "downtimeLimitMs": 300}), since)
    if task["status"] != "succeeded": raise SystemExit(f"migrate: {json.dumps(task)}")
    d = task["detail"]
    rows["ours_total"].append(d["total-time"]); rows["ours_down"].append(d["downtime"]); rows["ours_wall"].append(t1 - t0)
    rows["ours_bytes"].append(d["ram"]["transferred"]); rows["ours_sync"].append(d["ram"]["dirty-sync-count"])
    # the guest runs on at the destination and its check still passes; then it is removed
    did = d.get("destinationGuestId")
    time.sleep(1)
    text = dst.console(did) if did else ""
    if "holds" in text: raise SystemExit("memory-pattern check failed after migration:\n" + text[-500:])
    if did:
        dst.req("POST", f"/guests/{did}/stop")
        dst.req("DELETE", f"/guests/{did}")
    src.req("DELETE", f"/guests/{gid}")

    for key, bw in (("qd", None), ("qu", 1 << 40)):
        total, down, wall, moved, syncs = qemu_migrate(f"{key}{rnd}", bw)
        rows[f"{key}_total"].append(total); rows[f"{key}_down"].append(down); rows[f"{key}_wall"].append(wall)
        rows[f"{key}_bytes"].append(moved); rows[f"{key}_sync"].append(syncs)
    print(f"round {rnd}: emupanel total {rows['ours_total'][-1]} ms, downtime {rows['ours_down'][-1]} ms "
          f"(wall {rows['ours_wall'][-1]:.3f} s, {rows['ours_bytes'][-1] / 2**20:.1f} MiB, {rows['ours_sync'][-1]} syncs) | "
          f"qemu 128 MiB/s total {rows['qd_total'][-1]} ms, downtime {rows['qd_down'][-1]} ms | "
          f"qemu unlimited total {rows['qu_total'][-1]} ms, downtime {rows['qu_down'][-1]} ms", flush=True)
cleanup()

rng = lambda k, fmt="{:.0f}": span(rows[k], fmt)
mib = lambda k: mib_span(rows[k])
print()
print(f"1 GiB virt guest, mempattern-forever.elf running {RUN_S:g} s, loopback, downtime limit 300 ms; "
      f"{ROUNDS} rounds, min-max")
print(f"{'':26} {'total-time ms':>14} {'downtime ms':>12} {'wall s':>12} {'sent MiB':>10} {'syncs':>6}")
for key, label in (("ours", "emupanel (unlimited)"), ("qd", "qemu 7.2 (128 MiB/s dflt)"), ("qu", "qemu 7.2 (unlimited)")):
    print(f"{label:26} {rng(key + '_total'):>14} {rng(key + '_down'):>12} {rng(key + '_wall', '{:.3f}'):>12} "
          f"{mib(key + '_bytes'):>10} {rng(key + '_sync'):>6}")
print("wall = POST/migrate to the final event (emupanel's includes pre-flight, ticket and start at the destination)")
med = lambda k: sorted(rows[k])[len(rows[k]) // 2]
print(f"median ratios emupanel/qemu-unlimited: total-time {med('ours_total') / max(1, med('qu_total')):.2f}, "
      f"downtime {med('ours_down') / max(1, med('qu_down')):.2f}; "
      f"emupanel downtime max {max(rows['ours_down'])} ms (goal <= 30 ms)")
PY
