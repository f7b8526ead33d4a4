"""Hostile HTTP against qprom's listener: the real libqprom.so in a child process
(listener_child.py) whose SIGPIPE disposition is q's (SIG_DFL), all on loopback.

What is proved, and how:

* Nothing is signalled into the process. Every child is checked for SIGPIPE: not ignored,
  not caught, not blocked in any thread (the listener's included), read from /proc; a
  positive control proves such a child dies of SIGPIPE (returncode -13) when anything in
  it writes to a dead socket with writev or write, and survives with MSG_NOSIGNAL. After
  each hostile load the child must still run (returncode None) and exit 0 when told.
* The listener keeps serving: after every case a normal scrape (GET /metrics, the full
  10k-series body, Content-Length checked) succeeds.
* Threads and fds stay bounded: read from /proc/<pid>/task and /proc/<pid>/fd. Threads
  never exceed the count right after start; fds never exceed that baseline plus the
  connections the listener may keep (`maxConnections`, default 256) plus FD_SLACK, and
  come back to baseline + FD_SLACK within the listener's timeout once clients leave.
* Cases: slowloris (silent and trickling connections, reconnecting when dropped) while
  scrapes must succeed well within the timeout; oversized request lines and headers
  (431), huge or chunked bodies (413); malformed requests (an error status or a clean
  close, never a hang beyond the timeout); wrong methods (405 + Allow); pipelined
  requests (the first answered whole, then close); clients that disconnect mid-response
  (close, read-a-little-then-close, RST); slow readers; 1,000 concurrent scrapers
  (every one gets 200 or 503, no connection errors).

Waiting is bounded everywhere: sockets carry timeouts, /proc is polled with deadlines,
and a SIGALRM watchdog fails any test that outlives its budget.
"""
from __future__ import annotations

import collections
import fcntl
import re
import select
import signal
import socket
import struct
import termios
import threading
import time

import pytest

from listener_child import (PROM_HEADERS, ChildError, ListenerChild, get, pct, raise_nofile,
                            request, scrape, scrape_many)

DEFAULT_MAX_CONNECTIONS = 256   # the listener's documented cap on open connections
FD_SLACK = 16                   # fds the process may open besides client connections
SERIES = 10_000
# Series for tests that need a body larger than loopback's socket buffers can absorb
# (measured: ~2.8 MB of a response sits in the kernel while the client reads nothing), so
# that the listener is still writing when the client stops reading or goes away.
BIG_SERIES = 40_000

BUDGET = {  # seconds per test (SIGALRM watchdog); default DEFAULT_BUDGET
    "test_slowloris_scrapes_still_succeed": 45,
    "test_clients_disconnecting_mid_response": 60,
    "test_slow_readers_release_the_listener_within_its_timeout": 40,
    "test_1000_concurrent_scrapers": 60,
}
DEFAULT_BUDGET = 30


@pytest.fixture(autouse=True)
def _watchdog(request):
    budget = BUDGET.get(request.node.originalname, DEFAULT_BUDGET)

    def fire(*_):
        pytest.fail(f"{request.node.name} exceeded its {budget}s budget", pytrace=True)

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, budget)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="module", autouse=True)
def _nofile():
    raise_nofile(4096)


# ------------------------------------------------------------------------ children --

def start_child(config=None, series=SERIES, **kw) -> ListenerChild:
    """A child serving `series` series with `config`; fails the test if qprom_start
    refused the config, or if SIGPIPE is not as q has it (default action, unblocked)."""
    c = ListenerChild(config, series=series, **kw)
    if c.error:
        c.close()
        pytest.fail(f"qprom_start refused {config}: {c.error}")
    st = c.signal_state()
    if st["ignored"] or st["caught"] or st["blocked_in"]:
        c.close()
        pytest.fail(f"the child's SIGPIPE is not q's (SIG_DFL, unblocked): {st}")
    c.timeout = float((config or {}).get("timeout", 10.0))
    c.baseline = {"threads": c.threads(), "fds": c.fds()}
    return c


@pytest.fixture
def spawn():
    kids = []

    def make(config=None, series=SERIES, **kw):
        c = start_child(config, series, **kw)
        kids.append(c)
        return c

    yield make
    for c in kids:
        c.close(timeout=10)


def wait_for(pred, timeout, step=0.05):
    """pred() until truthy or `timeout`; returns the last value."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > end:
            return v
        time.sleep(step)


def died(c: ListenerChild) -> str:
    rc = c.returncode
    sig = ""
    if rc is not None and rc < 0:
        sig = f" (killed by {signal.Signals(-rc).name})"
    return f"the child is gone: returncode {rc}{sig}; stderr:\n{c.stderr_tail()}"


def assert_serves(c: ListenerChild, timeout=None):
    assert c.alive(), died(c)
    r = scrape(c.port, timeout=timeout or c.timeout + 5)
    assert c.alive(), died(c)
    assert r.status == 200 and r.complete and b"hostile_requests_total" in r.body, \
        f"a normal scrape failed: status {r.status}, end {r.end}, {len(r.body)} body bytes " \
        f"of {r.headers.get('content-length')}, {r.seconds:.2f}s"
    return r


def assert_survived(c: ListenerChild, settle=None):
    """Alive, serving, no more threads than at start, fds back near baseline."""
    assert c.alive(), died(c)
    settle = c.timeout + 3 if settle is None else settle
    fd_max = c.baseline["fds"] + FD_SLACK
    fds = wait_for(lambda: (n := c.fds()) <= fd_max and n, settle) or c.fds()
    assert fds <= fd_max, f"fds {fds} > baseline {c.baseline['fds']} + {FD_SLACK} " \
                          f"{settle:.0f}s after the clients left"
    th = c.threads()
    assert th <= c.baseline["threads"], f"threads {th} > {c.baseline['threads']} at start"
    assert_serves(c)


def finish(c: ListenerChild):
    """Last step of a test: the child exits normally (0) when its stdin closes."""
    rc = c.close(timeout=15)
    assert rc == 0, died(c)


def scrape_codes(c: ListenerChild) -> dict:
    body = assert_serves(c).body.decode()
    return {m[1]: float(m[2]) for m in re.finditer(r'^qprom_scrapes_total\{code="(\d+)"\} (\S+)$',
                                                   body, re.M)}


# =============================================================== positive control ==

@pytest.mark.parametrize("mode,ignore,dies", [
    ("writev", False, True),          # q's disposition: a writev to a dead peer kills
    ("write", False, True),
    ("send_nosignal", False, False),  # MSG_NOSIGNAL: EPIPE as an error, no signal
    ("writev", True, False),          # SIGPIPE ignored (CPython's and libe's default): lives
])
def test_positive_control_sigpipe_is_detectable(mode, ignore, dies):
    """The suite can see a SIGPIPE: the same child, writing to a TCP socket whose peer
    has closed, is killed by it (returncode -SIGPIPE) unless MSG_NOSIGNAL or SIG_IGN."""
    extra = ("--keep-python-sigpipe",) if ignore else ()
    c = ListenerChild({}, series=0, extra_args=extra)
    try:
        assert c.error is None, c.error
        st = c.signal_state()
        assert st["ignored"] == ignore and not st["caught"] and not st["blocked_in"], st
        c.proc.stdin.write(f"sigpipe {mode}\n".encode())
        c.proc.stdin.flush()
        assert c.expect(5, "the probe's start") == {"probe": mode, "writing": True}
        if dies:
            with pytest.raises(ChildError, match="exited"):
                c.expect(10, "the probe's result")
            assert c.returncode == -signal.SIGPIPE, died(c)
        else:
            r = c.expect(10, "the probe's result")
            assert r["survived"] and r["errors"][-1] == "EPIPE", r
            assert c.alive()
    finally:
        c.close(timeout=10)


# ============================================== request-level cases, one listener ==

SHARED_TIMEOUT = 1.0   # the listener's timeout here: bounds the cases that wait for it


@pytest.fixture(scope="module")
def shared():
    c = start_child({"timeout": SHARED_TIMEOUT})
    yield c
    rc = c.close(timeout=10)
    assert rc == 0, died(c)


def check_answer(c, r, allowed, what):
    """r came back within the timeout; its status is allowed (None: a close without a
    response); a response is whole, says Connection: close, and the connection ended."""
    assert c.alive(), died(c)
    assert r.end != "timeout", f"{what}: no answer and no close within {r.seconds:.1f}s"
    assert r.status in allowed, f"{what}: status {r.status} (end {r.end}, {r.raw[:120]!r}), " \
                                f"want one of {sorted(allowed, key=str)}"
    if r.status is not None:
        assert r.complete, f"{what}: {r.status} response cut short ({r.end})"
        assert r.headers.get("connection", "").lower() == "close", r.headers
    assert r.seconds < c.timeout + 2.5, f"{what}: took {r.seconds:.1f}s"


H = b"Host: x\r\n"
OVERSIZED = {
    # name: (request bytes as sent, status)
    "line_16k": (b"GET /metrics?" + b"a" * 16_000 + b" HTTP/1.1\r\n" + H + b"\r\n", 431),
    "line_no_end_64k": (b"GET /" + b"a" * 65_536, 431),
    "many_headers": (b"GET /metrics HTTP/1.1\r\n" + b"".join(b"X-Pad-%d: %s\r\n" % (i, b"v" * 60)
                                                           for i in range(200)) + b"\r\n", 431),
    # within maxRequestBytes, but more header fields than the parser's table holds (100)
    "header_fields_101": (b"GET /metrics HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(101))
                          + b"\r\n", 431),
    "one_header_64k": (b"GET /metrics HTTP/1.1\r\nX-Big: " + b"v" * 65_536 + b"\r\n\r\n", 431),
    "content_length_1e9": (b"POST /metrics HTTP/1.1\r\n" + H + b"Content-Length: 1000000000\r\n\r\n"
                           + b"b" * 100_000, 413),
    "get_content_length_9000": (b"GET /metrics HTTP/1.1\r\n" + H + b"Content-Length: 9000\r\n\r\n"
                                + b"b" * 9000, 413),
    "chunked": (b"POST /metrics HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
                + b"4000\r\n" + b"c" * 0x4000 + b"\r\n0\r\n\r\n", 413),
    "transfer_encoding_identity": (b"GET /metrics HTTP/1.1\r\n" + H
                                   + b"Transfer-Encoding: identity\r\n\r\n", 413),
}


def head_of(total: int) -> bytes:
    """A GET /metrics head of exactly `total` bytes (the query string pads it)."""
    base = b"GET /metrics? HTTP/1.1\r\n" + H + b"\r\n"
    return base.replace(b"? ", b"?" + b"a" * (total - len(base)) + b" ")


@pytest.mark.parametrize("name", list(OVERSIZED))
def test_oversized(shared, name):
    data, want = OVERSIZED[name]
    r = request(shared.port, data, timeout=shared.timeout + 5)
    check_answer(shared, r, {want}, name)
    assert_serves(shared)


@pytest.mark.parametrize("limit", [None, 1024])
def test_request_head_limit_boundary(spawn, shared, limit):
    """maxRequestBytes is the largest head accepted: that size is served, one more is 431."""
    c = shared if limit is None else spawn({"timeout": SHARED_TIMEOUT, "maxRequestBytes": limit})
    n = limit or 8192
    r = request(c.port, head_of(n), timeout=c.timeout + 5)
    check_answer(c, r, {200}, f"a head of exactly {n} bytes")
    r = request(c.port, head_of(n + 1), timeout=c.timeout + 5)
    check_answer(c, r, {431}, f"a head of {n + 1} bytes")
    assert_serves(c)


def test_header_field_limit_boundary(shared):
    """100 header fields in a small head are served; 101 are 431 (header_fields_101)."""
    fields = b"".join(b"X-%d: v\r\n" % i for i in range(99))   # and Host: 100
    r = request(shared.port, b"GET /metrics HTTP/1.1\r\n" + H + fields + b"\r\n",
                timeout=shared.timeout + 5)
    check_answer(shared, r, {200}, "100 header fields")
    assert_serves(shared)


NUL = b"\x00"
MALFORMED = {
    # name: (bytes, {the one outcome}; None = closed without a response). The listener is
    # deterministic, so each case is pinned to what it does; where the RFCs would allow
    # another answer the comment says so. A head that never ends is closed at the timeout
    # (408 or 400 would be allowed too).
    "garbage_line": (b"GARBAGE\r\n\r\n", {400}),
    "all_byte_values": (bytes(range(256)) + b"\r\n\r\n", {400}),
    "binary_no_terminator": (bytes((i * 37 + 11) % 256 for i in range(1000)).replace(b"\n", b"x"),
                             {None}),
    "nul_in_method": (b"G" + NUL + b"T /metrics HTTP/1.1\r\n" + H + b"\r\n", {400}),
    "nul_in_target": (b"GET /metr" + NUL + b"ics HTTP/1.1\r\n" + H + b"\r\n", {400}),
    "nul_in_header_name": (b"GET /metrics HTTP/1.1\r\nX-" + NUL + b": v\r\n\r\n", {400}),
    # RFC 9110 5.5: reject, or replace NUL with SP (then an unknown header is ignored):
    # the listener ignores the unknown header
    "nul_in_header_value": (b"GET /metrics HTTP/1.1\r\nX-A: a" + NUL + b"b\r\n\r\n", {400}),   # httparse: a NUL is not a field-value octet
    "only_nuls": (NUL * 600 + b"\r\n\r\n", {400}),
    "missing_version": (b"GET /metrics\r\n" + H + b"\r\n", {400}),
    "http09_one_line": (b"GET /metrics\r\n", {None}),
    "http2_preface": (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", {505}),
    "http3_version": (b"GET /metrics HTTP/3.0\r\n" + H + b"\r\n", {505}),
    "lowercase_version": (b"GET /metrics http/1.1\r\n" + H + b"\r\n", {400}),
    "version_suffix": (b"GET /metrics HTTP/1.1x\r\n" + H + b"\r\n", {400}),
    # RFC 9112 2.2: a recipient MAY take a lone LF as a line terminator (it does)
    "lone_lf": (b"GET /metrics HTTP/1.1\nHost: x\n\n", {200}),
    "bare_cr": (b"GET /metrics HTTP/1.1\rHost: x\r\r", {None}),
    # RFC 9112 2.2: a server SHOULD ignore one empty line before the request line; this
    # one refuses it
    "leading_empty_line": (b"\r\nGET /metrics HTTP/1.1\r\n" + H + b"\r\n", {200}),   # RFC 9112 2.2: a server SHOULD ignore it (httparse does)
    "empty_head": (b"\r\n\r\n", {400}),
    "header_without_colon": (b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n", {400}),
    "space_before_colon": (b"GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n", {400}),
    "obs_fold": (b"GET /metrics HTTP/1.1\r\n" + H + b" folded\r\n\r\n", {400}),
    "double_space": (b"GET  /metrics HTTP/1.1\r\n" + H + b"\r\n", {400}),
    "tab_separator": (b"GET\t/metrics HTTP/1.1\r\n" + H + b"\r\n", {400}),
    "space_in_target": (b"GET /met rics HTTP/1.1\r\n" + H + b"\r\n", {400}),
    "utf8_target": ("GET /métrics HTTP/1.1\r\n".encode() + H + b"\r\n", {400}),
    "method_paren": (b"G(T /metrics HTTP/1.1\r\n" + H + b"\r\n", {400}),
    "method_4k": (b"A" * 4096 + b" /metrics HTTP/1.1\r\n" + H + b"\r\n", {405}),
    "method_lowercase_get": (b"get /metrics HTTP/1.1\r\n" + H + b"\r\n", {405}),
    "method_brew": (b"BREW /metrics HTTP/1.1\r\n" + H + b"\r\n", {405}),
    "content_length_negative": (b"GET /metrics HTTP/1.1\r\nContent-Length: -1\r\n\r\n", {400}),
    "content_length_text": (b"GET /metrics HTTP/1.1\r\nContent-Length: abc\r\n\r\n", {400}),
    "content_length_overflow": (b"GET /metrics HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
                                {400}),
    "tls_client_hello": (bytes.fromhex("160301003a0100003603035a5b") + b"\x00" * 40, {None}),
    "connect_and_half_close": (b"", {None}),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed(shared, name):
    data, allowed = MALFORMED[name]
    r = request(shared.port, data, timeout=shared.timeout + 5, shut_write=(name == "connect_and_half_close"))
    check_answer(shared, r, allowed, name)
    if None in allowed and r.status is None:
        assert r.raw == b"", f"{name}: closed after sending unparsable bytes {r.raw[:80]!r}"
    assert_serves(shared)


def test_trickled_head_is_cut_at_the_timeout(shared):
    """A head sent one byte every 0.1 s never completes: the listener ends the connection
    (a close, or a 400/408 answer) once `timeout` has passed since it arrived; the bytes
    that keep coming do not extend that deadline."""
    head = b"GET /metrics HTTP/1.1\r\n" + b"X-Slow: yes\r\n" * 100
    t0 = time.monotonic()
    got, end = b"", None
    with socket.create_connection(("127.0.0.1", shared.port), timeout=5) as s:
        for i in range(len(head)):
            r, _, _ = select.select([s], [], [], 0.1)     # the trickle's pace
            if r:
                try:
                    got = s.recv(4096)
                    end = "eof" if not got else "answer"
                except ConnectionResetError:
                    end = "reset"
                break
            try:
                s.send(head[i:i + 1])
            except OSError as e:
                end = f"send: {e!r}"
                break
    took = time.monotonic() - t0
    assert end is not None, f"still open after {took:.1f}s of trickling"
    assert took < shared.timeout + 1.0, f"closed only after {took:.1f}s ({end}); timeout {shared.timeout}s"
    if got:
        assert got.startswith((b"HTTP/1.1 400", b"HTTP/1.1 408")), got[:80]
    assert_serves(shared)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "TRACE", "CONNECT", "PATCH"])
def test_wrong_method_on_metrics_is_405(shared, method):
    for data in (get(method=method),
                 get(method=method, headers={"Content-Length": "5"}) + b"hello"):
        r = request(shared.port, data, timeout=shared.timeout + 5)
        check_answer(shared, r, {405}, f"{method} /metrics")
        allow = [v for k, v in r.header_list if k.lower() == "allow"]
        assert allow == ["GET, HEAD"], r.header_list
    assert_serves(shared)


def test_head_and_landing_page(shared):
    r = request(shared.port, get(method="HEAD"), timeout=shared.timeout + 5)
    check_answer(shared, r, {200}, "HEAD /metrics")
    assert r.body == b""
    r = request(shared.port, get(path="/"), timeout=shared.timeout + 5)
    check_answer(shared, r, {200}, "GET /")
    r = request(shared.port, get(path="/", method="POST"), timeout=shared.timeout + 5)
    check_answer(shared, r, {405}, "POST /")
    r = request(shared.port, get(path="/nope"), timeout=shared.timeout + 5)
    check_answer(shared, r, {404}, "GET /nope")


PIPELINED = {
    "2_gets": get() * 2,
    "10_gets": get() * 10,
    "200_gets": get() * 200,                        # 8.6 KB: more than one read
    "200_gets_gzip": get(headers={"Accept-Encoding": "gzip"}) * 200,
    "get_then_8k_junk": get() + b"x" * 8000,
    "get_then_post": get() + get(method="POST", headers={"Content-Length": "3"}) + b"abc",
    "head_then_gets": get(method="HEAD") + get() * 100,
}


@pytest.mark.parametrize("name", list(PIPELINED))
def test_pipelined_requests(shared, name):
    """Several requests in one write: the first is answered whole (Content-Length bytes),
    with Connection: close, and nothing follows it; the rest is discarded. A listener that
    closes while request bytes are still unread makes Linux send RST, which drops what
    its send buffer still holds (RFC 9112 9.6: close in stages for this reason); whether
    the client had read it all by then is a race, so each case is tried 6 times, with
    4 KB and default receive buffers."""
    for i in range(6):
        r = request(shared.port, PIPELINED[name], timeout=shared.timeout + 5,
                    rcvbuf=4096 if i % 2 == 0 else None)
        assert shared.alive(), died(shared)
        assert r.status == 200, f"try {i}: status {r.status}, end {r.end}"
        assert r.headers.get("connection", "").lower() == "close"
        assert r.complete, f"try {i}: first response cut short: {len(r.body)} of " \
                           f"{r.headers.get('content-length')} body bytes, then {r.end}"
        if name.startswith("head"):
            assert r.body == b"", f"bytes after the HEAD response: {r.body[:80]!r}"
    assert_serves(shared)


def test_shared_listener_survived(shared):
    """After every case above, on the same listener: alive, serving, bounded."""
    assert_survived(shared)


# ===================================================================== slowloris ==

TRICKLE = b"GET /metrics HTTP/1.1\r\nHost: slowloris\r\n"
TRICKLE_MORE = b"X-Slow: yes\r\n"


class Slowloris(threading.Thread):
    """`silent` connections that send nothing and `tricklers` that send one byte of a
    never-ending head every `tick` seconds; any the server closes is reopened on a later
    tick (at most `reconnect_per_tick` per tick, so that the test does not flood the
    accept queue faster than a real attacker needs to). Samples the child's thread and
    fd counts every tick."""

    def __init__(self, child, silent, tricklers, tick=0.5, reconnect_per_tick=150):
        super().__init__(daemon=True)
        self.c, self.port = child, child.port
        self.n, self.silent, self.tick, self.per_tick = silent + tricklers, silent, tick, reconnect_per_tick
        self.stop = threading.Event()
        self.ticks = 0
        self.cond = threading.Condition()
        self.connects = self.closed_by_server = 0
        self.max_fds = self.max_threads = self.max_open = 0
        self.error = None

    def _connect(self):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", self.port))
        self.connects += 1
        return s

    @staticmethod
    def _closed(s) -> bool:
        try:
            s.recv(4096)        # EOF, or the listener answered something: either way, done
            return True
        except BlockingIOError:
            return False
        except OSError:                      # reset, or a connect that failed
            return True

    def run(self):
        socks = [None] * self.n
        pos = [0] * self.n
        try:
            while not self.stop.is_set():
                made = 0
                for i in range(self.n):
                    s = socks[i]
                    if s is not None and self._closed(s):
                        s.close()
                        socks[i] = s = None
                        self.closed_by_server += 1
                    if s is None:
                        if made < self.per_tick:
                            socks[i] = self._connect()
                            pos[i] = 0
                            made += 1
                    elif i >= self.silent:
                        data = TRICKLE if pos[i] < len(TRICKLE) else TRICKLE_MORE
                        j = pos[i] if pos[i] < len(TRICKLE) else (pos[i] - len(TRICKLE)) % len(TRICKLE_MORE)
                        try:
                            s.send(data[j:j + 1])
                            pos[i] += 1
                        except BlockingIOError:
                            pass                              # still connecting
                        except OSError:
                            s.close()
                            socks[i] = None
                            self.closed_by_server += 1
                self.max_open = max(self.max_open, sum(s is not None for s in socks))
                if self.c.alive():
                    self.max_fds = max(self.max_fds, self.c.fds())
                    self.max_threads = max(self.max_threads, self.c.threads())
                with self.cond:
                    self.ticks += 1
                    self.cond.notify_all()
                self.stop.wait(self.tick)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e
        finally:
            for s in socks:
                if s is not None:
                    s.close()
            with self.cond:
                self.ticks = -1
                self.cond.notify_all()

    def wait_ticks(self, n, timeout):
        with self.cond:
            return self.cond.wait_for(lambda: self.ticks >= n or self.ticks < 0, timeout)


def test_slowloris_scrapes_still_succeed(spawn):
    """600 idle connections (300 silent, 300 trickling a byte every 0.5 s, each reopened
    when the listener drops it) held for longer than the listener's timeout; meanwhile
    back-to-back scrapes must each return the whole body within half the timeout. The
    listener's thread count never grows, and its fds stay within baseline +
    maxConnections (default 256) + FD_SLACK."""
    timeout = 4.0
    c = spawn({"timeout": timeout})
    attack = Slowloris(c, silent=300, tricklers=300)
    attack.start()
    results = []
    try:
        assert attack.wait_ticks(5, 10), "the attack did not get going"
        end = time.monotonic() + timeout + 1.5
        while (t := time.monotonic()) < end:
            results.append(scrape(c.port, timeout=timeout / 2))
            assert c.alive(), died(c)
            time.sleep(max(0.0, t + 0.25 - time.monotonic()))   # pacing: at most 4 scrapes/s
    finally:
        attack.stop.set()
        attack.join(10)
    assert attack.error is None, attack.error
    ok = [r for r in results if r.status == 200 and r.complete]
    summary = (f"{len(ok)}/{len(results)} scrapes OK; outcomes "
               f"{dict(collections.Counter((r.status, r.end) for r in results))}; latency max "
               f"{max((r.seconds for r in results), default=0):.2f}s; attacker: {attack.connects} connects, "
               f"{attack.closed_by_server} closed by the listener, {attack.max_open} open at most; "
               f"child: fds max {attack.max_fds} (baseline {c.baseline['fds']}), threads max "
               f"{attack.max_threads} (baseline {c.baseline['threads']})")
    print(summary)
    assert len(results) >= 3, summary
    assert len(ok) == len(results), summary
    assert max(r.seconds for r in results) < timeout / 2, summary
    assert attack.max_threads <= c.baseline["threads"], summary
    assert attack.max_fds <= c.baseline["fds"] + DEFAULT_MAX_CONNECTIONS + FD_SLACK, summary
    assert_survived(c)
    finish(c)


# ===================================================== disconnects mid-response ==

def _fionread(s) -> int:
    return struct.unpack("i", fcntl.ioctl(s.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]


def _leave_early(port, mode, timeout):
    """One client that sends GET /metrics and goes away before the response is read."""
    s = socket.socket()
    try:
        s.settimeout(timeout)
        if mode in ("read_some", "rst_after_some"):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", port))
        gz = {"Accept-Encoding": "gzip"} if mode == "rst_after_some" else {}
        s.sendall(get(headers=gz))
        if mode == "close_at_once":
            pass
        elif mode == "half_close_then_close":
            s.shutdown(socket.SHUT_WR)
        elif mode in ("read_some", "rst_after_some"):
            s.recv(100)                       # the listener is writing now
        if mode in ("rst_at_once", "rst_after_some"):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return None
    except OSError as e:
        return f"{mode}: {e!r}"
    finally:
        s.close()


def test_clients_disconnecting_mid_response(spawn):
    """300 clients in waves of 50 ask for a 5.6 MB body (40k series: more than loopback's
    socket buffers absorb, so the listener is mid-write) and leave: close at once,
    half-close, read 100 bytes then close (unread data: RST), RST at once, RST after some
    bytes of a gzip body. Writes into those dead sockets must not signal the process
    (SIGPIPE is SIG_DFL here); afterwards it serves, with threads and fds bounded."""
    c = spawn({"timeout": 2.0}, series=BIG_SERIES)
    before = scrape_codes(c)
    modes = ["close_at_once", "half_close_then_close", "read_some", "rst_at_once", "rst_after_some"]
    errors = []
    max_fds = max_threads = 0
    for wave in range(6):
        ts, errs = [], []
        for i in range(50):
            mode = modes[(wave * 50 + i) % len(modes)]
            t = threading.Thread(target=lambda m=mode: errs.append(_leave_early(c.port, m, 10)))
            t.start()
            ts.append(t)
        for t in ts:
            t.join(15)
        errors += [e for e in errs if e]
        assert c.alive(), died(c) + f" (after wave {wave})"
        max_fds, max_threads = max(max_fds, c.fds()), max(max_threads, c.threads())
    after = scrape_codes(c)
    served = after.get("200", 0) - before.get("200", 0) - 1   # minus the `before` scrape
    print(f"disconnects: client-side errors {len(errors)} {errors[:3]}; the listener answered "
          f"{served:.0f} of 300 with 200 ({after}); child fds max {max_fds} (baseline "
          f"{c.baseline['fds']}), threads max {max_threads} (baseline {c.baseline['threads']})")
    # the scenario happened: the listener answered some of them with the whole body, which
    # no client read (at most 100 bytes), so those writes ran into closed or reset sockets
    assert served >= 1, after
    assert max_threads <= c.baseline["threads"]
    assert max_fds <= c.baseline["fds"] + DEFAULT_MAX_CONNECTIONS + FD_SLACK
    assert_survived(c)
    finish(c)


# ================================================================== slow readers ==

def test_slow_readers_release_the_listener_within_its_timeout(spawn):
    """As many clients as workers send GET /metrics for a 5.6 MB body and never read
    (4 KB receive buffers), so each worker is blocked writing (no in-flight limit, so
    none gets a quick 503). A scrape sent then must succeed once the listener gives up
    on them, within its 2 s timeout (+ margin), and the slow readers' connections end."""
    timeout, workers = 2.0, 4
    c = spawn({"timeout": timeout, "workers": workers, "maxInFlight": 0}, series=BIG_SERIES)
    slow = []
    try:
        for _ in range(workers):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.settimeout(timeout + 5)
            s.connect(("127.0.0.1", c.port))
            s.sendall(get())
            slow.append(s)
        # each has response bytes waiting: every worker is busy writing to one of them
        assert wait_for(lambda: all(_fionread(s) > 0 for s in slow), 5), \
            f"not every slow reader got response bytes: {[_fionread(s) for s in slow]}"
        r = scrape(c.port, timeout=timeout + 3)
        assert r.status == 200 and r.complete, f"scrape behind slow readers: {r.status} {r.end} " \
                                               f"{len(r.body)} bytes after {r.seconds:.2f}s"
        assert r.seconds < timeout + 1.5, f"the scrape took {r.seconds:.2f}s (timeout {timeout}s)"
        got = []
        for s in slow:                     # the listener let go of them: EOF or reset
            n, end = 0, "eof"
            try:
                while True:
                    b = s.recv(1 << 16)
                    if not b:
                        break
                    n += len(b)
            except ConnectionResetError:
                end = "reset"
            except (socket.timeout, TimeoutError):
                end = "timeout"
            got.append((n, end))
        print(f"slow readers: scrape took {r.seconds:.2f}s; readers got {got} of {c.body_bytes}+ bytes")
        assert all(end != "timeout" for _, end in got), got
    finally:
        for s in slow:
            s.close()
    assert_survived(c)
    finish(c)


# ======================================================== 1,000 concurrent scrapers ==

def test_1000_concurrent_scrapers(spawn):
    """1,000 clients released at once, each GET /metrics as Prometheus asks (OpenMetrics,
    gzip) on 10k series: every one gets an HTTP response, 200 or 503 (max-in-flight
    load shedding), none a reset, a timeout or a close without a response.
    maxConnections 1024: room for all of them."""
    c = spawn({"timeout": 10.0, "maxConnections": 1024})
    res, wall = scrape_many(c.port, 1000, PROM_HEADERS, timeout=40)
    by = collections.Counter(r.status if r.error is None else f"error:{r.error}" for r in res)
    lat = [r.seconds for r in res if r.error is None]
    print(f"1000 scrapers: {dict(by)} in {wall:.2f}s; p50 {pct(lat, 50) * 1e3:.0f} ms, "
          f"p99 {pct(lat, 99) * 1e3:.0f} ms, max {max(lat, default=0) * 1e3:.0f} ms")
    bad = {k: v for k, v in by.items() if k not in (200, 503)}
    assert not bad, f"clients without a 200/503: {bad} (all: {dict(by)})"
    assert by[200] >= 1
    assert c.threads() <= c.baseline["threads"]
    assert_survived(c)
    finish(c)
