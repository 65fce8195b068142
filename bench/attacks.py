"""Two attacks on the panel's HTTP server from issue 11, against emupanel and, in the same run,
the servers given for comparison (the plain-C libmicrohttpd anchor, an older emupanel).

slowloris: 4 source addresses x 128 connections (filling the 512 slots) send a request head one
    header line every 5 s and reopen whatever the server closes; meanwhile /health is asked from a
    fifth address, one request at a time with a 5 s timeout, for DURATION seconds.
bodies:    4 source addresses x 128 connections send POST heads with a wrong bearer token (or to
    the public POST /session) announcing 1 MiB and then the body; the server's RSS is read from
    /proc before, at its peak, and after.

Usage: attacks.py OUT DURATION NAME=BINARY_OR_ANCHOR ...   (ANCHOR = "c:PATH" for http_anchor)"""
import json, os, re, selectors, socket, subprocess, sys, time

sys.path.insert(0, os.path.abspath("bench"))
from benchlib import cleanup, procs

OUT, DURATION = os.path.abspath(sys.argv[1]), float(sys.argv[2])
TARGETS = [arg.split("=", 1) for arg in sys.argv[3:]]
ATTACKERS = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
PROBE = "127.0.0.9"
PER_ADDRESS = 128
TOKEN = "attack-bench-token-0123456789"


def start(name, target):
    """-> (process, port). `c:PATH` is the anchor (port given), anything else an emupanel binary."""
    if target.startswith("c:"):
        port = 18190 + len(procs)
        p = subprocess.Popen([target[2:], str(port), "2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(p)
        wait_for_health(port)
        return p, port
    data = os.path.join(OUT, name + "-" + str(len(procs)))
    os.makedirs(data, exist_ok=True)
    with open(data + "/config.json", "w") as f:
        json.dump({"listen": "127.0.0.1:0", "dataDir": data, "publicDir": os.path.abspath("Public"),
                   "guestsDir": os.path.abspath("guests")}, f)
    log = open(data + "/serve.out", "w+")
    p = subprocess.Popen([target, "serve", "--config", data + "/config.json", "--log-level", "error"],
                         env=dict(os.environ, EMUPANEL_TOKEN=TOKEN), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    procs.append(p)
    for _ in range(500):
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", open(data + "/serve.out").read())
        if m:
            port = int(m.group(1))
            wait_for_health(port)
            return p, port
        time.sleep(0.02)
    raise SystemExit(f"{name} did not start")


def wait_for_health(port):
    for _ in range(300):
        if health(port, timeout=1)[0] == 200:
            return
        time.sleep(0.05)
    raise SystemExit(f"nothing answers /health on {port}")


def health(port, timeout=5.0):
    """-> (status or an error word, seconds)."""
    t0 = time.perf_counter()
    s = socket.socket()
    s.settimeout(timeout)
    try:
        s.bind((PROBE, 0))
        s.connect(("127.0.0.1", port))
        s.sendall(f"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
        head = b""
        while b"\r\n" not in head:
            chunk = s.recv(4096)
            if not chunk:
                return "closed", time.perf_counter() - t0
            head += chunk
        return int(head.split()[1]), time.perf_counter() - t0
    except socket.timeout:
        return "timeout", time.perf_counter() - t0
    except OSError as e:
        return type(e).__name__, time.perf_counter() - t0
    finally:
        s.close()


class Attack:
    """Non-blocking connections from the attacker addresses, kept at PER_ADDRESS each."""

    def __init__(self, port, head, trickle=None, body=b""):
        self.port, self.head, self.trickle, self.body = port, head, trickle, body
        self.sel = selectors.DefaultSelector()
        self.conns = {}
        self.opened = 0
        for address in ATTACKERS:
            for _ in range(PER_ADDRESS):
                self.open(address)

    def open(self, address):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.bind((address, 0))
            s.connect_ex(("127.0.0.1", self.port))
        except OSError:
            s.close()
            return
        self.conns[s] = {"address": address, "out": self.head + self.body, "line": 0}
        self.sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
        self.opened += 1

    def close(self, s, reopen):
        address = self.conns.pop(s)["address"]
        self.sel.unregister(s)
        s.close()
        if reopen:
            self.open(address)

    def run(self, seconds, reopen, on_tick=None):
        end = time.monotonic() + seconds
        next_line = time.monotonic() + 5
        while time.monotonic() < end:
            for key, events in self.sel.select(timeout=0.05):
                s, state = key.fileobj, self.conns.get(key.fileobj)
                if state is None:
                    continue
                try:
                    if events & selectors.EVENT_READ:
                        if not s.recv(65536):
                            self.close(s, reopen)
                            continue
                    if events & selectors.EVENT_WRITE and state["out"]:
                        sent = s.send(state["out"][:262144])
                        state["out"] = state["out"][sent:]
                        if not state["out"]:
                            self.sel.modify(s, selectors.EVENT_READ)
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    self.close(s, reopen)
            if self.trickle and time.monotonic() >= next_line:
                next_line += 5
                for s, state in list(self.conns.items()):
                    state["line"] += 1
                    try:
                        s.send(self.trickle % state["line"])
                    except OSError:
                        self.close(s, reopen)
            if on_tick:
                on_tick()

    def stop(self):
        for s in list(self.conns):
            self.close(s, False)


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def summary(samples):
    times = sorted(t for status, t in samples if status == 200)
    failed = [status for status, _ in samples if status != 200]
    if not times:
        return f"0/{len(samples)} answered ({', '.join(sorted(set(map(str, failed))))})"
    p = lambda q: times[min(len(times) - 1, int(q * len(times)))] * 1000
    kinds = f" — failures: {', '.join(sorted(set(map(str, failed))))}" if failed else ""
    return f"{len(times)}/{len(samples)} answered, p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, max {times[-1] * 1000:.1f} ms{kinds}"


def slowloris(name, target):
    p, port = start(name, target)
    quiet = [health(port) for _ in range(50)]
    attack = Attack(port, f"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode(), trickle=b"X-Slow-%d: y\r\n")
    attack.run(3, reopen=True)  # let every slot fill
    samples = []
    deadline = time.monotonic() + DURATION
    next_probe = [time.monotonic()]

    def probe():
        # One probe at a time, at most every 200 ms, between the attacker's rounds.
        if time.monotonic() >= next_probe[0]:
            samples.append(health(port))
            next_probe[0] = time.monotonic() + 0.2

    attack.run(max(0.0, deadline - time.monotonic()), reopen=True, on_tick=probe)
    held = len(attack.conns)
    attack.stop()
    after = [health(port) for _ in range(20)]
    print(f"  {name:10s} quiet:  {summary(quiet)}")
    print(f"  {name:10s} attack: {summary(samples)}  ({attack.opened} connections opened, {held} open at the end)")
    print(f"  {name:10s} after:  {summary(after)}")
    p.kill()
    p.wait()


def bodies(name, target):
    for label, path, auth in (("wrong token", "/api/v1/guests", f"Authorization: Bearer wrong-{'x' * 20}\r\n"),
                              ("login", "/api/v1/session", "")):
        p, port = start(name, target)
        size = 1 << 20
        before = rss_mib(p.pid)
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
        peak = [before]
        attack = Attack(port, head.encode(), body=b"{" + b" " * (size - 2) + b"}")
        attack.run(8, reopen=False, on_tick=lambda: peak.__setitem__(0, max(peak[0], rss_mib(p.pid))))
        attack.stop()
        time.sleep(1)
        after = rss_mib(p.pid)
        answered = health(port)
        print(f"  {name:10s} {label:12s} RSS {before:6.1f} MiB before, {peak[0]:6.1f} MiB peak, {after:6.1f} MiB after"
              f"  ({attack.opened} connections; /health then: {answered[0]})")
        p.kill()
        p.wait()


try:
    print(f"slowloris: {len(ATTACKERS)} x {PER_ADDRESS} connections, a header line every 5 s, reopened when closed; "
          f"/health from {PROBE} for {DURATION:.0f} s (5 s timeout each)")
    for name, target in TARGETS:
        slowloris(name, target)
    print(f"bodies: {len(ATTACKERS)} x {PER_ADDRESS} connections announcing and sending 1 MiB")
    for name, target in TARGETS:
        if not target.startswith("c:"):
            bodies(name, target)
finally:
    cleanup()
