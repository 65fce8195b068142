"""What bench/snapshot.sh and bench/migrate.sh share: emupanel over its HTTP API, QEMU over
QMP, and the processes both start. Completion is learnt from events on both sides (emupanel's
/events long poll, QEMU's MIGRATION event), so no client busy-loop competes for the cores."""
import atexit, json, os, re, resource, signal, socket, subprocess, sys, time, urllib.error, urllib.request

procs = []


def cleanup(*_):
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


signal.signal(signal.SIGTERM, lambda *a: (cleanup(), sys.exit(1)))
# A run that stops on a SystemExit (a failed check) leaves no panel or QEMU behind either.
atexit.register(cleanup)


def settings():
    """What prepare.sh passes the Python half: binary, QEMU, rounds, run seconds, output
    directory, and the workloads to run (WORKLOADS, names of `WORKLOADS` below)."""
    return (sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), os.path.abspath(sys.argv[5]),
            sys.argv[6].split())


class Workload:
    """A memory-pattern guest in a 1 GiB virt machine, the same ELF on both sides. `ready` is the
    console text that says its memory is in the state to measure (None: run RUN_SECONDS)."""

    def __init__(self, name, image, elf, ready, what):
        self.name, self.image, self.elf, self.ready, self.what = name, image, os.path.abspath("guests/" + elf), ready, what


WORKLOADS = {w.name: w for w in (
    Workload("hot16", "memory-pattern", "mempattern-forever.elf", None,
             "rewrites one byte of every page of 16 MiB, over and over"),
    Workload("hot512", "memory-pattern-512", "mempattern-512-forever.elf", "pass 16 ok",
             "rewrites one byte of every page of 512 MiB, over and over"),
    Workload("idle512", "memory-pattern-512-idle", "mempattern-512-idle.elf", "filled, idle",
             "wrote 512 MiB once, then only reads it back once a second"),
)}


def wait_for(read_text, marker, timeout, what):
    deadline = time.time() + timeout
    while marker not in read_text():
        if time.time() > deadline:
            raise SystemExit(f"{what}: no '{marker}' within {timeout} s: {read_text()[-300:]!r}")
        time.sleep(0.1)


class Panel:
    """One `emupanel serve` with its own data directory under `out`."""

    def __init__(self, binary, out, name):
        self.dir = os.path.join(out, name)
        os.makedirs(self.dir)
        self.token = "bench-token-" + name + "-0123456789"
        cfg = {"listen": "127.0.0.1:0", "dataDir": self.dir, "publicDir": os.path.abspath("Public"),
               "guestsDir": os.path.abspath("guests"),
               # QEMU guests (the qemu-via-panel rows) on the QEMU the bench compares with; no other probed.
               "qemu": {"binaries": [os.path.basename(os.environ.get("QEMU", "qemu-system-riscv64"))]}}
        with open(self.dir + "/config.json", "w") as f:
            json.dump(cfg, f)
        self.log_path = self.dir + "/serve.out"
        self.log = open(self.log_path, "w+")
        self.p = subprocess.Popen([binary, "serve", "--config", self.dir + "/config.json", "--log-level", "warning"],
                                  env=dict(os.environ, EMUPANEL_TOKEN=self.token), stdin=subprocess.DEVNULL,
                                  stdout=self.log, stderr=subprocess.STDOUT)
        procs.append(self.p)
        for _ in range(300):
            m = re.search(r"http://127\.0\.0\.1:(\d+)/", open(self.log_path).read())
            if m:
                self.port = int(m.group(1))
                self.url = f"http://127.0.0.1:{self.port}"
                return
            time.sleep(0.02)
        raise SystemExit("emupanel did not start:\n" + open(self.log_path).read())

    def req(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        r = urllib.request.Request(f"{self.url}/api/v1{path}", data=data, method=method,
                                   headers={"Authorization": "Bearer " + self.token, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(r, timeout=120) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as e:
            raise SystemExit(f"{method} {path} -> {e.code} {e.read().decode()}")

    def seq(self):
        """The newest event's number: take it before a POST, then wait with `task`. It also opens
        the event stream (Server-Sent Events, as the panel's own UI follows a task) that `task`
        reads, so the final event is seen as the panel sends it, with no request in between."""
        since = self.req("GET", "/events?since=0&wait=0")["next"]
        if getattr(self, "stream", None): self.stream.close()
        r = urllib.request.Request(f"{self.url}/api/v1/events/stream?since={since}",
                                   headers={"Authorization": "Bearer " + self.token, "Accept": "text/event-stream"})
        self.stream = urllib.request.urlopen(r, timeout=600)
        return since

    def task(self, started, since):
        """-> (task, perf_counter when its final event arrived)."""
        tid = started["task"]["id"]
        final = ("task.succeeded", "task.failed", "task.cancelled")
        while True:
            line = self.stream.readline()
            if not line: raise SystemExit(f"the event stream ended before task {tid} did")
            if not line.startswith(b"data:"): continue
            event = json.loads(line[5:])
            if event.get("subject") == tid and event.get("type") in final:
                t1 = time.perf_counter()
                self.stream.close()
                self.stream = None
                return self.req("GET", f"/tasks/{tid}"), t1

    def console(self, gid):
        return self.req("GET", f"/guests/{gid}/console?since=0&wait=0")["data"]

    def start_guest(self, name, workload, run_seconds, paused=False, backend="builtin"):
        """Creates and starts a 1 GiB guest of `workload` (on the built-in core or QEMU), lets it
        get its memory ready; its id."""
        gid = self.req("POST", "/guests", {"name": name, "image": workload.image, "machineType": "virt",
                                           "memoryMiB": 1024, "backend": backend})["id"]
        self.req("POST", f"/guests/{gid}/start")
        if workload.ready:
            wait_for(lambda: self.console(gid), workload.ready, 120, f"emupanel guest {name}")
        else:
            time.sleep(run_seconds)
            assert "pass " in self.console(gid), "guest made no progress: " + self.console(gid)
        if paused:
            self.req("POST", f"/guests/{gid}/pause")
        return gid

    def memory(self, field):
        """VmRSS or VmHWM of the serve process, bytes."""
        for line in open(f"/proc/{self.p.pid}/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        return 0

    def measure_peak(self):
        """Resets the peak RSS (VmHWM); returns the RSS now, to compare with the next peak."""
        with open(f"/proc/{self.p.pid}/clear_refs", "w") as f:
            f.write("5")
        return self.memory("VmRSS")


class QMP:
    def __init__(self, sock_path, timeout=30):
        deadline = time.time() + timeout
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX)
                self.s.connect(sock_path)
                break
            except OSError:
                self.s.close()
                if time.time() > deadline:
                    raise
                time.sleep(0.005)
        self.f = self.s.makefile("rwb")
        self.events = []
        self.f.readline()  # greeting
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}).encode() + b"\n")
        self.f.flush()
        while True:
            msg = json.loads(self.f.readline())
            if "return" in msg:
                return msg["return"]
            if "error" in msg:
                raise SystemExit(f"QMP {name}: {msg['error']}")
            if "event" in msg:
                self.events.append(msg)

    def prepare_migration(self, **parameters):
        """migrate-set-parameters, and MIGRATION events on (so `migrate` need not poll)."""
        if parameters:
            self.cmd("migrate-set-parameters", **parameters)
        self.cmd("migrate-set-capabilities", capabilities=[{"capability": "events", "state": True}])

    def migrate(self, uri, timeout=None):
        """Starts a migration and waits for its final MIGRATION event -> (query-migrate, perf_counter then).
        With `timeout` (s), a migration still running then is cancelled and its figures returned."""
        self.cmd("migrate", uri=uri)
        deadline = time.time() + timeout if timeout else None
        try:
            while True:
                if deadline:  # events keep coming while it runs: bound the whole wait, not each read
                    self.s.settimeout(max(0.01, deadline - time.time()))
                msg = self.events.pop(0) if self.events else json.loads(self.f.readline())
                if msg.get("event") == "MIGRATION" and msg["data"]["status"] in ("completed", "failed", "cancelled"):
                    break
        except (socket.timeout, TimeoutError, OSError):
            m = self.cmd_after_timeout("query-migrate")
            self.cmd_after_timeout("migrate_cancel")
            return m, time.perf_counter()
        finally:
            self.s.settimeout(None)
        t1 = time.perf_counter()
        m = self.cmd("query-migrate")
        for _ in range(200):  # "completed" shows before QEMU fills in its final figures (0 ms)
            if m["status"] != "completed" or (m.get("downtime") and m.get("total-time")):
                break
            time.sleep(0.001)
            m = self.cmd("query-migrate")
        if m["status"] != "completed":
            raise SystemExit(f"qemu migrate: {m}")
        return m, t1

    def cmd_after_timeout(self, name):
        """A command on a connection whose read timed out: a fresh file object, the old one may hold half a line."""
        self.s.settimeout(None)
        self.f = self.s.makefile("rwb")
        return self.cmd(name)


    def status(self):
        return self.cmd("query-status")["status"]

    def wait_loaded(self):
        """After -incoming: until the stream is in and the guest runs (or stays paused, as its source was)."""
        while self.status() in ("inmigrate", "postmigrate", "prelaunch", "restore-vm"):
            time.sleep(0.005)


def qemu_serial(out, tag):
    with open(os.path.join(out, f"serial-{tag}.txt"), "rb") as f:
        return f.read().decode(errors="replace")


def qemu_guest(binary, out, workload, tag, run_seconds, *extra):
    """QEMU running `workload` until its memory is ready (as `Panel.start_guest`) -> (process, QMP)."""
    p, sock = qemu(binary, out, workload.elf, tag, *extra)
    q = QMP(sock)
    if workload.ready:
        wait_for(lambda: qemu_serial(out, tag), workload.ready, 300, f"qemu guest {tag}")
    else:
        time.sleep(run_seconds)
    return p, q


def dd_fsync(out, nbytes):
    """dd of `nbytes` random bytes, staged in RAM beforehand, to a file in `out` with conv=fsync:
    (seconds, CPU seconds)."""
    src = "/dev/shm/emupanel-bench-dd.src"
    subprocess.run(["dd", "if=/dev/urandom", f"of={src}", "bs=1M", f"count={(nbytes + (1 << 20) - 1) >> 20}",
                    "iflag=fullblock", "status=none"], check=True)
    dst = os.path.join(out, "dd.out")
    t0, c0 = time.perf_counter(), children_cpu()
    subprocess.run(["dd", f"if={src}", f"of={dst}", "bs=1M", "conv=fsync", "status=none"], check=True)
    seconds, cpu = time.perf_counter() - t0, children_cpu() - c0
    os.unlink(src)
    os.unlink(dst)
    return seconds, cpu


def cpu_seconds(pid):
    """CPU time of a process and its waited-for children so far (utime+stime+cutime+cstime): what an
    operation cost, whatever else the machine was running."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def gbps(nbytes, ms):
    return nbytes / max(ms, 1) / 1e6


def qemu(binary, out, elf, tag, *extra):
    """qemu-system-riscv64 running `elf` in a 1 GiB virt guest, serial to out/serial-TAG.txt."""
    sock = os.path.join(out, f"qmp-{tag}.sock")
    serial = open(os.path.join(out, f"serial-{tag}.txt"), "wb")
    # The monitor's socket listens before QEMU starts and is handed to it (as libvirt and the
    # panel do): a client connects at once and reads the greeting the moment QEMU sends it, with
    # no polling for the socket to appear in the time measured.
    if os.path.exists(sock): os.unlink(sock)
    listening = socket.socket(socket.AF_UNIX)
    listening.bind(sock)
    listening.listen(1)
    p = subprocess.Popen([binary, "-M", "virt", "-m", "1024", "-bios", "none", "-kernel", elf, "-display", "none",
                          "-serial", "stdio", "-monitor", "none",
                          "-chardev", f"socket,id=bench-qmp,fd={listening.fileno()},server=on,wait=off",
                          "-mon", "chardev=bench-qmp,mode=control", *extra],
                         stdin=subprocess.DEVNULL, stdout=serial, stderr=subprocess.STDOUT, pass_fds=[listening.fileno()])
    listening.close()
    procs.append(p)
    return p, sock


def stop(p):
    p.kill()
    p.wait()


def span(values, fmt="{:.3f}"):
    """min-max, or one value when they are equal."""
    lo, hi = min(values), max(values)
    return fmt.format(lo) if lo == hi else f"{fmt.format(lo)}-{fmt.format(hi)}"


def mib_span(values):
    return "-".join(dict.fromkeys(f"{x / 2**20:.1f}" for x in (min(values), max(values))))
