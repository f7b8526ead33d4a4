#!/usr/bin/env python3
"""A child process that runs qprom's listener the way q would, for hostile-HTTP tests.

As a script (the child):

    python tests/host/listener_child.py [--series 10000] [--hist-every 10]
                                        [--config '{"timeout": 2, "workers": 4}'] [--poll]

1. Puts SIGPIPE back to SIG_DFL (and unblocks it) before anything else, and again once
   the host is up. CPython sets SIGPIPE to SIG_IGN at startup, whatever it inherited,
   and so does KX's libe.so: its `khp("",-1)`, which qshim_init calls, ignores SIGPIPE
   (measured: SigIgn bit 13 is set right after it). A q process does not ignore it, so
   a write to a dead socket without MSG_NOSIGNAL (e.g. writev) kills q. Here it kills
   this child too, and the parent sees returncode -SIGPIPE.
2. Loads the real libqprom.so in the stand-in q host (qhost.py: libe.so + libqshim.so).
3. Creates `--series` series: counters `hostile_requests_total{shard,key}` and, every
   `--hist-every`-th series, a histogram series `hostile_latency_seconds{shard,key}`
   (default buckets, a few observations), so the default 10k series render a ~1.5 MB
   text body.
4. Starts the listener with qprom_start on 127.0.0.1, port 0, with `--config` (a JSON
   object; every key is passed through to qprom_start's dictionary, so keys the listener
   does not know yet are refused by it, not here): JSON int -> long, float -> float,
   bool -> boolean, string -> symbol. No poll function unless `--poll`, in which case
   this process's main thread runs q's event loop (qshim_poll) between control commands.
5. Prints one JSON line: {"port": P, "pid": ..., "series": N, "body_bytes": text size}
   (or {"error": "<q error>"} if qprom_start refused the config), then serves until
   stdin closes; then qprom_stop and exit 0.

Control commands (one per line on stdin; each answered by one JSON line on stdout):
    ping                  {"pong": true}
    stats                 {"threads": n, "fds": n} (from /proc/self)
    restart <json>        qprom_stop, then qprom_start with the new config: {"port": P} / {"error": ...}
    stop                  qprom_stop: {"stopped": true}
    sigpipe <mode>        positive control: write to a TCP socket whose peer has closed,
                          mode writev | write (no MSG_NOSIGNAL: SIGPIPE kills the child
                          before it can answer) or send_nosignal (survives: {"survived": ...})
    counter <name>        qprom_get of a label-less series: {"value": v}

As a module (the parent side): `ListenerChild` runs and talks to the child, reads its
thread and fd counts from /proc/<pid>, and checks its signal dispositions; `request`,
`scrape` and `scrape_many` (asyncio) are the HTTP clients the tests and
bench_scrapers.py use. Everything has a timeout.
"""
from __future__ import annotations

import signal

# First of all: q's SIGPIPE disposition (see the docstring).
if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGPIPE})

import asyncio
import json
import os
import queue
import resource
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent

COUNTER = "hostile_requests_total"
HISTOGRAM = "hostile_latency_seconds"
LABELS = ["shard", "key"]

# What Prometheus 2.x sends (OpenMetrics preferred, gzip).
PROM_HEADERS = {
    "Accept": "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
              "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "Accept-Encoding": "gzip",
    "X-Prometheus-Scrape-Timeout-Seconds": "10",
}


def raise_nofile(want: int | None = None) -> int:
    """Raises RLIMIT_NOFILE's soft limit (to `want`, or to the hard limit); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if want is None else min(max(soft, want), hard)
    if hard == resource.RLIM_INFINITY and want is None:
        target = max(soft, 65536)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


# =========================================================================== child ==

def q_sigpipe() -> None:
    """SIGPIPE as q has it: default action (terminate), not blocked on this thread."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGPIPE})


def _emit(obj) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _proc_counts(pid="self") -> dict:
    return {"threads": len(os.listdir(f"/proc/{pid}/task")), "fds": len(os.listdir(f"/proc/{pid}/fd"))}


class _Child:
    def __init__(self, a):
        sys.path.insert(0, str(HERE))
        from qhost import Host, QError
        self.QError = QError
        self.q = Host.get()
        q_sigpipe()   # libe's khp("",-1) (in qshim_init) has just set SIG_IGN: undo it
        self.ext = self.q.load()
        self.poll = a.poll
        self.running = False
        self.poll_runs = 0
        q, ext = self.q, self.ext
        ext.call("qprom_limit", max(10_000, a.series + 1))
        ext.call("qprom_create", {"name": COUNTER, "type": "counter",
                                  "help": "Hostile-test requests.", "labels": q.syms(LABELS)})
        ext.call("qprom_create", {"name": HISTOGRAM, "type": "histogram",
                                  "help": "Hostile-test latency.", "unit": "seconds",
                                  "labels": q.syms(LABELS)})
        ext.call("qprom_create", {"name": "hostile_poll_runs", "type": "gauge",
                                  "help": "Times the poll function ran."})
        obs = q.vec("f", [0.003, 0.02, 0.4, 1.5])
        for i in range(a.series):
            lv = q.syms([f"s{i % 100}", f"k{i}"])
            if a.hist_every and i % a.hist_every == a.hist_every - 1:
                ext.call("qprom_obs", HISTOGRAM, lv, obs)
            else:
                ext.call("qprom_inc", COUNTER, lv, float(i % 1000 + 1))
        self.series = a.series
        if self.poll:
            q.define("hostile.on_poll", self._on_poll)

    def _on_poll(self, _x):
        self.poll_runs += 1
        self.ext.call("qprom_set", "hostile_poll_runs", None, float(self.poll_runs))

    def _cfg(self, cfg: dict):
        q = self.q
        cfg = {"port": 0, "bind": "127.0.0.1", **cfg}
        vals = []
        for k, v in cfg.items():
            if isinstance(v, bool):
                vals.append(q.b(v))
            elif isinstance(v, int):
                vals.append(q.j(v))
            elif isinstance(v, float):
                vals.append(q.f(v))
            elif isinstance(v, str):
                vals.append(q.s(v))
            else:
                raise ValueError(f"config {k}: no q form for {v!r}")
        return q.dict(q.syms(list(cfg)), q.knk(*vals))

    def start(self, cfg: dict) -> dict:
        fn = self.q.lambda_("hostile.on_poll") if self.poll else None
        try:
            port = self.ext.call("qprom_start", self._cfg(cfg), fn, check_refs=False)
        except self.QError as e:
            return {"error": e.msg}
        self.running = True
        return {"port": port}

    def stop(self) -> None:
        if self.running:
            self.ext.call("qprom_stop", None)
            self.running = False

    def body_bytes(self) -> int:
        return len(self.ext.call("qprom_render", "text"))

    def command(self, line: str):
        cmd, _, arg = line.strip().partition(" ")
        if cmd == "ping":
            return {"pong": True}
        if cmd == "stats":
            return _proc_counts()
        if cmd == "stop":
            self.stop()
            return {"stopped": True}
        if cmd == "restart":
            self.stop()
            return self.start(json.loads(arg or "{}"))
        if cmd == "sigpipe":
            return sigpipe_probe(arg)
        if cmd == "counter":
            try:
                return {"value": self.ext.call("qprom_get", arg, None)}
            except self.QError as e:
                return {"error": e.msg}
        return {"error": f"unknown command {cmd!r}"}


def sigpipe_probe(mode: str) -> dict:
    """Writes to a loopback TCP socket whose peer has closed until the kernel says EPIPE.
    writev / write (no MSG_NOSIGNAL) raise SIGPIPE there: with SIG_DFL the process dies
    and never returns. send_nosignal gets EPIPE as an error and returns."""
    if mode not in ("writev", "write", "send_nosignal"):
        return {"error": f"sigpipe mode {mode!r}"}
    srv = socket.create_server(("127.0.0.1", 0))
    c = socket.create_connection(srv.getsockname(), timeout=5)
    peer, _ = srv.accept()
    peer.close()
    srv.close()
    _emit({"probe": mode, "writing": True})   # the parent sees how far we got
    data = b"x" * 4096
    errors = []
    for _ in range(500):
        try:
            if mode == "writev":
                os.writev(c.fileno(), [data, data])
            elif mode == "write":
                os.write(c.fileno(), data)
            else:
                c.send(data, socket.MSG_NOSIGNAL)
        except BrokenPipeError:          # EPIPE: only reached when SIGPIPE did not kill us
            c.close()
            return {"probe": mode, "survived": True, "errors": errors + ["EPIPE"]}
        except ConnectionResetError:     # ECONNRESET first (the peer's RST), EPIPE next
            errors.append("ECONNRESET")
        time.sleep(0.002)
    c.close()
    return {"probe": mode, "survived": True, "errors": errors, "note": "no EPIPE in 500 writes"}


def child_main(argv=None) -> int:
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--hist-every", type=int, default=10,
                    help="every Nth series is a histogram series (0: counters only)")
    ap.add_argument("--config", default="{}", help="JSON object for qprom_start")
    ap.add_argument("--poll", action="store_true", help="poll function + q's event loop here")
    ap.add_argument("--keep-python-sigpipe", action="store_true",
                    help="ignore SIGPIPE, as CPython and libe leave it (the control's control)")
    a = ap.parse_args(argv)
    raise_nofile()
    ch = _Child(a)
    if a.keep_python_sigpipe:
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    res = ch.start(json.loads(a.config))
    res.update(pid=os.getpid(), series=ch.series, body_bytes=ch.body_bytes())
    _emit(res)
    buf = b""
    try:
        while True:
            if ch.poll:
                ch.q.poll(20)
                if ch.q.hook_errors:
                    sys.stderr.write("poll function failed: " + ch.q.hook_errors[0] + "\n")
                    ch.q.hook_errors.clear()
                r, _, _ = select.select([0], [], [], 0)
            else:
                r, _, _ = select.select([0], [], [], 1.0)
            if not r:
                continue
            chunk = os.read(0, 65536)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.strip():
                    _emit(ch.command(line.decode()))
    finally:
        ch.stop()
    return 0


# ========================================================================== parent ==

class ChildError(RuntimeError):
    pass


class ListenerChild:
    """Runs listener_child.py and talks to it. Use as a context manager."""

    def __init__(self, config: dict | None = None, series=10_000, hist_every=10, poll=False,
                 start_timeout=60.0, extra_args=(), python=None):
        self.config = dict(config or {})
        self._err = tempfile.TemporaryFile()
        cmd = [python or sys.executable, str(Path(__file__).resolve()), "--series", str(series),
               "--hist-every", str(hist_every), "--config", json.dumps(self.config), *extra_args]
        if poll:
            cmd.append("--poll")
        # restore_signals (the default) gives the child SIG_DFL for SIGPIPE at exec; CPython
        # then ignores it again at startup, and the child's first statement undoes that.
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._err, cwd=str(HERE.parents[1]))
        self.pid = self.proc.pid
        self._lines: queue.Queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        first = self.expect(start_timeout, "the child's start line")
        self.start_result = first
        self.port = first.get("port")
        self.error = first.get("error")
        self.body_bytes = first.get("body_bytes")
        self.series = first.get("series")

    def _read(self):
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def stderr_tail(self, n=3000) -> str:
        self._err.seek(0)
        return self._err.read().decode(errors="replace")[-n:]

    def expect(self, timeout: float, what="an answer") -> dict:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise ChildError(f"no {what} from the child within {timeout}s "
                             f"(returncode {self.proc.poll()}); stderr:\n{self.stderr_tail()}") from None
        if line is None:
            self.proc.wait(timeout=5)
            raise ChildError(f"the child exited (returncode {self.proc.returncode}) before {what}; "
                             f"stderr:\n{self.stderr_tail()}")
        return json.loads(line)

    def command(self, cmd: str, timeout=10.0) -> dict:
        self.proc.stdin.write((cmd + "\n").encode())
        self.proc.stdin.flush()
        return self.expect(timeout, f"answer to {cmd!r}")

    def restart(self, config: dict, timeout=20.0) -> dict:
        r = self.command("restart " + json.dumps(config), timeout)
        self.config, self.port, self.error = dict(config), r.get("port"), r.get("error")
        return r

    # -- what the parent sees directly ----------------------------------------------
    def alive(self) -> bool:
        return self.proc.poll() is None

    @property
    def returncode(self):
        return self.proc.poll()

    def threads(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/task"))

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def sockets(self) -> int:
        n = 0
        for fd in os.listdir(f"/proc/{self.pid}/fd"):
            try:
                n += os.readlink(f"/proc/{self.pid}/fd/{fd}").startswith("socket:")
            except OSError:
                pass
        return n

    def signal_state(self, settle=3.0) -> dict:
        """SIGPIPE in the process' ignored mask, and in each thread's blocked mask. glibc's
        pthread_create blocks every signal in a new thread until it starts running, so a
        thread caught in that window shows SIGPIPE blocked: retry for up to `settle` s."""
        end = time.monotonic() + settle
        while True:
            st = self._signal_state()
            if not st["blocked_in"] or time.monotonic() > end:
                return st
            time.sleep(0.05)

    def _signal_state(self) -> dict:
        bit = 1 << (signal.SIGPIPE - 1)

        def field_of(path, name):
            for line in Path(path).read_text().splitlines():
                if line.startswith(name + ":"):
                    return int(line.split()[1], 16)
            raise KeyError(name)

        st = f"/proc/{self.pid}/status"
        blocked = {}
        for tid in os.listdir(f"/proc/{self.pid}/task"):
            try:
                comm = Path(f"/proc/{self.pid}/task/{tid}/comm").read_text().strip()
                blocked[f"{tid}:{comm}"] = bool(field_of(f"/proc/{self.pid}/task/{tid}/status", "SigBlk") & bit)
            except (OSError, KeyError):
                pass
        return {"ignored": bool(field_of(st, "SigIgn") & bit),
                "caught": bool(field_of(st, "SigCgt") & bit),
                "blocked_in": [t for t, b in blocked.items() if b],
                "threads": list(blocked)}

    def close(self, timeout=20.0) -> int | None:
        """Closes stdin (the child stops the listener and exits 0); kills it after timeout."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._err.close()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ==================================================================== HTTP clients ==

@dataclass
class Response:
    status: int | None = None          # None: no (parsable) status line came back
    headers: dict = field(default_factory=dict)   # lower-case names; last one wins
    header_list: list = field(default_factory=list)
    body: bytes = b""
    raw: bytes = b""
    end: str = "eof"                   # eof | reset | timeout | error:<name>
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        """A status line, and a body of exactly Content-Length bytes (when one is given)."""
        if self.status is None:
            return False
        cl = self.headers.get("content-length")
        return cl is None or (cl.isdigit() and int(cl) == len(self.body))


def parse_response(raw: bytes) -> Response:
    r = Response(raw=raw)
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        head, body = raw, b""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) >= 2 and parts[0].startswith("HTTP/1.") and parts[1].isdigit() and sep:
        r.status = int(parts[1])
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            r.header_list.append((k.strip(), v.strip()))
            r.headers[k.strip().lower()] = v.strip()
    r.body = body
    return r


def request(port: int, data: bytes | list, timeout=10.0, rcvbuf: int | None = None,
            read_limit: int | None = None, shut_write=False, host="127.0.0.1") -> Response:
    """Sends `data` (or a list of chunks, each sent as its own write) on a fresh
    connection and reads until EOF, error or `timeout` (total, connect included)."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    end, chunks = "eof", []
    s = socket.socket()
    try:
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(timeout)
        s.connect((host, port))
        for part in (data if isinstance(data, list) else [data]):
            s.sendall(part)
        if shut_write:
            s.shutdown(socket.SHUT_WR)
        got = 0
        while read_limit is None or got < read_limit:
            left = deadline - time.monotonic()
            if left <= 0:
                end = "timeout"
                break
            s.settimeout(left)
            b = s.recv(1 << 16)
            if not b:
                break
            chunks.append(b)
            got += len(b)
    except ConnectionResetError:
        end = "reset"
    except (socket.timeout, TimeoutError):
        end = "timeout"
    except OSError as e:
        end = f"error:{type(e).__name__}:{e.errno}"
    finally:
        s.close()
    r = parse_response(b"".join(chunks))
    r.end, r.seconds = end, time.monotonic() - t0
    return r


def get(path="/metrics", method="GET", headers: dict | None = None, version="HTTP/1.1") -> bytes:
    h = {"Host": "qprom-test", **(headers or {})}
    return (f"{method} {path} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items())
            + "\r\n").encode()


def scrape(port: int, timeout=10.0, headers: dict | None = None) -> Response:
    return request(port, get(headers=headers), timeout=timeout)


@dataclass
class ScrapeResult:
    status: int | None
    seconds: float
    error: str | None          # None, or why no complete response came back
    nbytes: int = 0


async def _scrape_async(port, req, timeout, start_evt):
    await start_evt.wait()
    t0 = time.perf_counter()
    writer = None
    chunks, error = [], None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(req)
            await writer.drain()
            while True:
                b = await reader.read(1 << 16)
                if not b:
                    break
                chunks.append(b)
    except TimeoutError:
        error = "timeout"
    except ConnectionResetError:
        error = "reset"
    except ConnectionRefusedError:
        error = "refused"
    except OSError as e:
        error = f"{type(e).__name__}:{e.errno}"
    finally:
        if writer is not None:
            writer.close()
    dt = time.perf_counter() - t0
    r = parse_response(b"".join(chunks))
    if error is None:
        if r.status is None:
            error = "closed-without-response" if not chunks else "unparsable-response"
        elif not r.complete:
            error = "truncated"
    elif r.status is not None and error == "reset":
        error = "reset-after-response-start"
    return ScrapeResult(r.status, dt, error, len(r.raw))


async def _scrape_many(port, n, headers, timeout):
    start = asyncio.Event()
    req = get(headers=headers)
    tasks = [asyncio.create_task(_scrape_async(port, req, timeout, start)) for _ in range(n)]
    await asyncio.sleep(0)          # every task is waiting on the event: release them at once
    t0 = time.perf_counter()
    start.set()
    res = await asyncio.gather(*tasks)
    return res, time.perf_counter() - t0


def scrape_many(port: int, n: int, headers: dict | None = None, timeout=30.0):
    """n clients released at once, each connects, sends GET /metrics and reads to EOF.
    Returns ([ScrapeResult], wall seconds)."""
    raise_nofile(n + 256)
    return asyncio.run(_scrape_many(port, n, headers or {}, timeout))


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


if __name__ == "__main__":
    sys.exit(child_main())
