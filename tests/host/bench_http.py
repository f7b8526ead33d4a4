#!/usr/bin/env python3
"""HTTP scrape benchmark: qprom's listener (the real libqprom.so inside the stand-in q
host) against the Python client's own exposition server, 10k series each, in one run.

    make bench-http                       # builds the .so and the host first
    target/venv/bin/python tests/host/bench_http.py [--duration 2] [--clients 1,4,16]
                                          [--profiles om-gzip,text] [--series 10000]

Both servers hold one counter family with two labels and SERIES series
(bench_requests_total{shard="s<i%100>",key="k<i>"}). The load generator is wrk (C,
epoll; installed with apt-get when missing and we are root, else that part is skipped):
each of N connections sends `Connection: close`, so every scrape is a fresh TCP
connection, as Prometheus' one-connection-per-scrape pattern against a server that closes
(ours always does; the Python client's wsgiref server too). Latency is wrk's (from the
request's first byte to the response's last), p50/p99 over all requests of a run.

Servers:
  qprom         qprom_start with no poll function
  qprom+poll    qprom_start with a poll function; the host's main thread services the
                event loop (q.poll) throughout, so every scrape runs the function first
  python        prometheus_client.start_http_server in a separate process

Request profiles:
  om-gzip       Prometheus 2's Accept header (OpenMetrics chosen) + Accept-Encoding: gzip
                + X-Prometheus-Scrape-Timeout-Seconds: 10, i.e. what a real scrape sends
  text          Accept: text/plain;version=0.0.4, no compression

Then, with the host's main thread blocked (no q.poll: it sits in thread.join), clients
(Python sockets, latency-only) scrape qprom+poll: each scrape must come back 200 with the
complete body after about pollTimeout, never a failure, and qprom_poll_timeouts_total
must count every one of them.

Caveat: client, servers and the host share this machine's CPUs (reported in the header).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from listener_child import pct  # percentiles, linear between ranks

HERE = Path(__file__).resolve().parent
FAMILY = "bench_requests"            # counter: exposed as bench_requests_total
LABELS = ("shard", "key")
PROM2_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
                "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
PROFILES = {
    "om-gzip": {"Accept": PROM2_ACCEPT, "Accept-Encoding": "gzip",
                "X-Prometheus-Scrape-Timeout-Seconds": "10"},
    "text": {"Accept": "text/plain;version=0.0.4"},
}
BLOCKED_POLL_TIMEOUT = 0.25          # s, the listener's pollTimeout in the blocked test


def label_values(i):
    return (f"s{i % 100}", f"k{i}")


def value_of(i):
    return i % 7 + 1


# ------------------------------------------------------------- the Python client --

def python_server(series: int):
    """Child process: prometheus_client's exposition server with the same series."""
    from prometheus_client import Counter, start_http_server
    c = Counter(FAMILY, "Bench requests.", LABELS)
    for i in range(series):
        c.labels(*label_values(i)).inc(value_of(i))
    httpd, _ = start_http_server(0, addr="127.0.0.1")
    print(httpd.server_port, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    while True:
        time.sleep(3600)


def cpu_ticks(pid) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])   # utime + stime


def wait_idle(pid, timeout=30.0):
    """Waits until the process stops using CPU: the Python server keeps rendering the
    scrapes wrk abandoned at the end of a run, which would slow the next run down."""
    end = time.monotonic() + timeout
    last = cpu_ticks(pid)
    while time.monotonic() < end:
        time.sleep(0.2)
        now = cpu_ticks(pid)
        if now - last <= 1:
            return
        last = now


def start_python_server(series):
    p = subprocess.Popen([sys.executable, __file__, "--python-server", "--series", str(series)],
                         stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()     # blocks until the child has built its series and listens
    if not line.strip().isdigit():
        p.kill()
        raise SystemExit(f"bench: the Python client's server did not start ({line!r})")
    return p, int(line)


# --------------------------------------------------------------------------- wrk --

WRK_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def ensure_wrk() -> str | None:
    """wrk's path; installs Debian's wrk when missing and we may (root, apt-get)."""
    w = shutil.which("wrk")
    if w or os.geteuid() != 0 or not shutil.which("apt-get"):
        return w
    print("bench: installing wrk (apt-get install -y wrk)", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-qq", "wrk"]
    if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, stdout=subprocess.DEVNULL)
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL)
    return shutil.which("wrk")


def run_wrk(wrk, lua, port, clients, duration, headers, while_running=None):
    cmd = [wrk, f"-t{min(clients, os.cpu_count() or 1)}", f"-c{clients}", f"-d{duration}s",
           "--timeout", "10s", "-s", lua, "-H", "Connection: close"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    cmd.append(f"http://127.0.0.1:{port}/metrics")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if while_running:
        while p.poll() is None:
            while_running()
    out, _ = p.communicate()
    for line in out.splitlines():
        if line.startswith("RESULT "):
            r = json.loads(line[7:])
            r["non2xx"] = _non2xx(out)
            return r
    raise RuntimeError(f"wrk gave no result:\n{out}")


def _non2xx(out):
    for line in out.splitlines():
        if "Non-2xx or 3xx responses:" in line:
            return int(line.split(":")[1])
    return 0


# ------------------------------------------------------------------------- qprom --

class QpromHost:
    def __init__(self, series):
        sys.path.insert(0, str(HERE))
        from qhost import Host
        self.q = Host.get()
        self.ext = self.q.load()
        self.runs = 0
        self.poll_error = None
        q, ext = self.q, self.ext
        ext.call("qprom_create", {"name": FAMILY + "_total", "type": "counter",
                                  "help": "Bench requests.", "labels": q.syms(list(LABELS))})
        ext.call("qprom_create", {"name": "bench_poll_runs", "type": "gauge",
                                  "help": "Times the poll function ran."})
        for i in range(series):
            ext.call("qprom_inc", FAMILY + "_total", q.syms(list(label_values(i))), value_of(i))
        q.define("bench.on_poll", self._on_poll)

    def _on_poll(self, _x):
        self.runs += 1
        self.ext.call("qprom_set", "bench_poll_runs", None, float(self.runs))

    def start(self, with_poll, workers, in_flight, poll_timeout=5.0):
        q = self.q
        cfg = q.dict(q.syms(["port", "bind", "workers", "maxInFlight", "pollTimeout"]),
                     q.knk(q.j(0), q.s("127.0.0.1"), q.j(workers), q.j(in_flight),
                           q.f(poll_timeout)))
        fn = q.lambda_("bench.on_poll") if with_poll else None
        return self.ext.call("qprom_start", cfg, fn, check_refs=False)

    def stop(self):
        self.ext.call("qprom_stop", None)

    def service(self, ms=10):
        """One turn of q's event loop (runs the poll function when a scrape asked)."""
        self.q.poll(ms)
        if self.q.hook_errors:   # keep the first failure of the poll function, once
            self.poll_error = self.poll_error or self.q.hook_errors[0]
            self.q.hook_errors.clear()

    def counter(self, name):
        return self.ext.call("qprom_get", name, None)


# ------------------------------------------------------------- blocked main thread --

def raw_scrape(port, headers):
    """(seconds, status, body complete?) for one GET on a fresh connection."""
    req = "GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n"
    req += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    t = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(req.encode())
        chunks = []
        while True:
            b = s.recv(1 << 16)
            if not b:
                break
            chunks.append(b)
    dt = time.perf_counter() - t
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    length = next((int(l.split(":", 1)[1]) for l in lines[1:]
                   if l.lower().startswith("content-length:")), -1)
    return dt, status, length == len(body)


def blocked_scrapes(host, port, clients, seconds, headers):
    """Scrapes from `clients` threads for `seconds` while this (q's main) thread only waits
    in join(): it never services the event loop, as when q is busy."""
    results, errors = [], []
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def client():
        while time.monotonic() < end:
            try:
                r = raw_scrape(port, headers)
            except OSError as e:
                with lock:
                    errors.append(repr(e))
                continue
            with lock:
                results.append(r)

    before = host.counter("qprom_poll_timeouts_total")
    ts = [threading.Thread(target=client) for _ in range(clients)]
    for t in ts:
        t.start()
    runs0 = host.runs
    for t in ts:
        t.join()
    ran = host.runs - runs0   # the poll function cannot have run: nobody serviced the loop
    host.service(0)           # resume: the pending poll request runs now
    after = host.counter("qprom_poll_timeouts_total")
    return results, errors, after - before, ran


# ------------------------------------------------------------------------ report --



def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--duration", type=int, default=2, help="whole seconds per wrk run")
    ap.add_argument("--clients", default="1,4,16")
    ap.add_argument("--profiles", default="om-gzip,text")
    ap.add_argument("--max-python-duration", type=int, default=20,
                    help="cap on a Python-server run (its runs last 3 x clients x one scrape)")
    ap.add_argument("--blocked-clients", type=int, default=4)
    ap.add_argument("--blocked-seconds", type=float, default=2.0)
    ap.add_argument("--python-server", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.python_server:
        return python_server(a.series)

    clients = [int(c) for c in a.clients.split(",")]
    profiles = a.profiles.split(",")
    t_start = time.monotonic()
    wrk = ensure_wrk()
    print(f"bench-http: {a.series} series ({FAMILY}_total{{shard,key}}), {os.cpu_count()} CPUs "
          f"shared by client and servers, {a.duration:g} s per run, "
          f"so={os.environ.get('QPROM_SO', 'target/l64/libqprom.so')}", flush=True)

    host = QpromHost(a.series)
    pyproc, pyport = start_python_server(a.series)
    rows = []
    try:
        if not wrk:
            print("bench-http: wrk not found and not installable here: throughput table skipped "
                  "(apt-get install wrk)", flush=True)
        else:
            with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
                f.write(WRK_LUA)
                lua = f.name
            try:
                cmax = max(clients)
                for server in ("qprom", "qprom+poll", "python"):
                    port = pyport
                    if server != "python":
                        # a worker per client and no in-flight limit (0): measure serving,
                        # not the 503 limiter
                        port = host.start(server == "qprom+poll", cmax + 1, 0)
                    try:
                        for prof in profiles:
                            one = None
                            for c in clients:
                                spin = host.service if server == "qprom+poll" else None
                                d = a.duration
                                if server == "python":
                                    # a run must last several latencies (c x one scrape, the
                                    # server being GIL-bound), or the count is all edge effect
                                    wait_idle(pyproc.pid)
                                    one = one or raw_scrape(port, PROFILES[prof])[0]
                                    d = min(max(d, math.ceil(3 * c * one)), a.max_python_duration)
                                r = run_wrk(wrk, lua, port, c, d, PROFILES[prof], spin)
                                rows.append((prof, c, server, r))
                    finally:
                        if server != "python":
                            host.stop()
            finally:
                os.unlink(lua)
    finally:
        pyproc.terminate()
        pyproc.wait()

    # -- the main thread blocked ---------------------------------------------------
    port = host.start(True, a.blocked_clients + 1, a.blocked_clients, BLOCKED_POLL_TIMEOUT)
    try:
        for _ in range(3):   # warm up (and prove polling works) with the loop serviced
            th = threading.Thread(target=raw_scrape, args=(port, PROFILES["om-gzip"]))
            th.start()
            while th.is_alive():
                host.service(5)
        res, errs, timeouts, ran_while_blocked = blocked_scrapes(
            host, port, a.blocked_clients, a.blocked_seconds, PROFILES["om-gzip"])
    finally:
        host.stop()

    # -- report -----------------------------------------------------------------------
    print()
    py = {(p, c): r for p, c, s, r in rows if s == "python"}
    hdr = (f"{'profile':8} {'clients':>7} {'server':11} {'scrapes/s':>10} {'p50 ms':>8} "
           f"{'p99 ms':>8} {'max ms':>8} {'KB/resp':>8} {'non-2xx':>7} {'errors':>6} {'x python':>8}")
    if rows:
        print(hdr)
        print("-" * len(hdr))
    for prof, c, server, r in rows:
        rate = r["requests"] / (r["duration_us"] / 1e6)
        base = py.get((prof, c))
        ratio = ""
        if base and server != "python" and base["requests"]:
            ratio = f"{rate / (base['requests'] / (base['duration_us'] / 1e6)):.1f}"
        errs_n = sum(r[k] for k in ("connect", "read", "write", "timeout"))
        kb = r["bytes"] / max(1, r["requests"]) / 1024
        print(f"{prof:8} {c:7d} {server:11} {rate:10.1f} {r['p50_us'] / 1e3:8.2f} "
              f"{r['p99_us'] / 1e3:8.2f} {r['max_us'] / 1e3:8.2f} {kb:8.1f} {r['non2xx']:7d} "
              f"{errs_n:6d} {ratio:>8}")
    if rows:
        print("KB/resp: bytes read per scrape (headers included, compressed for om-gzip). "
              "prometheus_client's text\nexposition also carries a _created gauge per series "
              "(its default), twice our samples; in OpenMetrics\nboth expose _total and _created. "
              "gzip: qprom level 1, prometheus_client level 9. 'x python' = scrapes/s\n"
              "over the Python server's at the same profile and clients.")
    lat = [r[0] for r in res]
    bad = [r for r in res if r[1] != 200 or not r[2]]
    print()
    print(f"main thread blocked (no q.poll), pollTimeout {BLOCKED_POLL_TIMEOUT * 1e3:.0f} ms, "
          f"{a.blocked_clients} clients x {a.blocked_seconds:g} s, om-gzip:")
    print(f"  scrapes {len(res)}  p50 {pct(lat, 50) * 1e3:.1f} ms  p99 {pct(lat, 99) * 1e3:.1f} ms  "
          f"min {min(lat, default=0) * 1e3:.1f} ms  max {max(lat, default=0) * 1e3:.1f} ms  "
          f"non-200 or short body {len(bad)}  socket errors {len(errs)}  "
          f"poll timeouts counted {timeouts:.0f}  poll fn ran while blocked {ran_while_blocked}")
    ok = (not bad and not errs and res and timeouts == len(res) and ran_while_blocked == 0
          and all(BLOCKED_POLL_TIMEOUT * 0.95 <= x < BLOCKED_POLL_TIMEOUT + 0.5 for x in lat))
    print(f"  {'OK' if ok else 'FAILED'}: every blocked scrape answered 200 in about pollTimeout, "
          "each counted as a poll timeout")
    if host.poll_error:
        ok = False
        print("\nFAILED: the poll function raised, so the qprom+poll rows did not run it "
              f"(first error):\n{host.poll_error}")
    print(f"\nbench-http: {time.monotonic() - t_start:.0f} s")
    return 0 if ok and not any(r["non2xx"] or sum(r[k] for k in ("connect", "read", "write", "timeout"))
                               for *_, r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
