"""Pushgateway client: qprom_push / qprom_push_delete (.prom.push / .prom.pushDelete).

* The request itself, seen by a capturing HTTP server: PUT/DELETE, the path escaped as
  the Python client's _escape_grouping_key (labels sorted, `/` or empty value as
  `<name>@base64/<urlsafe base64>`), the text 0.0.4 content type and body.
* A real prometheus-pushgateway on a free loopback port: a push with grouping labels
  shows up in its /metrics with the job and grouping labels; pushDelete removes it.
* Exact errors: closed port, 4xx from the gateway, bad arguments.
The only waits are bounded polling of the gateway's /-/ready.
"""
import base64
import http.server
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from qhost import QError

PUSHGATEWAY = Path(os.environ.get("QPROM_PUSHGATEWAY", "/usr/bin/prometheus-pushgateway"))
METRIC = "pushtest_batches_total"

E_REFUSED = "prom: push failed: connection refused"
E_4XX = "prom: push failed: gateway answered 4xx (rejected: check job, grouping and metrics)"
E_URL = 'prom: push url must be a string or symbol like "http://host:port" (http only)'
E_JOB = "prom: push job must be a non-empty symbol or string"
E_GROUPING = "prom: push grouping must be a dictionary of symbols or strings, or (::)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def err(ext, name, *args) -> str:
    with pytest.raises(QError) as e:
        ext.call(name, *args)
    return e.value.msg


@pytest.fixture(scope="module")
def metric(q, qprom):
    d = q.dict(q.syms(["name", "type", "help"]), q.knk(METRIC, "counter", b"Batches pushed."))
    if METRIC not in str(qprom.call("qprom_render", q.s("text"))):
        qprom.call("qprom_create", d)
    qprom.call("qprom_inc", q.s(METRIC), q.identity(), q.j(3))
    return METRIC


def grouping(q):
    # instance: plain; path: has '/' and a space -> base64; empty: '' -> base64 "="
    return q.dict(q.syms(["path", "instance", "empty"]), q.knk(b"a/b c", "eod", b""))


# ------------------------------------------------------------ the request itself --

@pytest.fixture
def capture():
    seen = []

    class H(http.server.BaseHTTPRequestHandler):
        def _any(self):
            n = int(self.headers.get("Content-Length") or 0)
            seen.append((self.command, self.path, self.headers.get("Content-Type"), self.rfile.read(n)))
            self.send_response(202 if self.command == "DELETE" else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()
        do_PUT = do_DELETE = _any

        def log_message(self, *a):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", seen
    srv.shutdown()
    srv.server_close()


def test_request_path_body_and_method(q, qprom, metric, capture):
    url, seen = capture
    b64 = base64.urlsafe_b64encode(b"a/b c").decode()
    want = f"/metrics/job/qbatch/empty@base64/=/instance/eod/path@base64/{b64}"
    assert qprom.call("qprom_push", q.string(url + "/"), q.s("qbatch"), grouping(q)) is None
    assert qprom.call("qprom_push_delete", q.s(url[len("http://"):]), b"qbatch", grouping(q)) is None
    (m1, p1, ct, body), (m2, p2, _, body2) = seen
    assert (m1, p1, m2, p2) == ("PUT", want, "DELETE", want)
    assert ct == "text/plain; version=0.0.4; charset=utf-8"
    assert f"{METRIC} 3".encode() in body.replace(b".0\n", b"\n") and body2 == b""
    # no grouping; job escaped too; (::) and an empty dict both mean none
    qprom.call("qprom_push", q.string(url), q.string("a b/c"), q.identity())
    qprom.call("qprom_push", q.string(url), q.s("j"), q.dict(q.syms([]), q.syms([])))
    assert seen[2][1] == "/metrics/job@base64/" + base64.urlsafe_b64encode(b"a b/c").decode()
    assert seen[3][1] == "/metrics/job/j"


@pytest.mark.parametrize("args,msg", [
    (lambda q: (q.string("https://127.0.0.1:1"), q.s("j"), q.identity()), E_URL),
    (lambda q: (q.string("ftp://h"), q.s("j"), q.identity()), E_URL),
    (lambda q: (q.j(1), q.s("j"), q.identity()), E_URL),
    (lambda q: (q.string("http://"), q.s("j"), q.identity()), E_URL),
    (lambda q: (q.string("http://127.0.0.1:1"), q.s(""), q.identity()), E_JOB),
    (lambda q: (q.string("http://127.0.0.1:1"), q.j(7), q.identity()), E_JOB),
    (lambda q: (q.string("http://127.0.0.1:1"), q.s("j"), q.j(1)), E_GROUPING),
    (lambda q: (q.string("http://127.0.0.1:1"), q.s("j"), q.dict(q.syms(["a"]), q.knk(q.j(1)))), E_GROUPING),
])
def test_bad_arguments(q, qprom, args, msg):
    assert err(qprom, "qprom_push", *args(q)) == msg
    assert err(qprom, "qprom_push_delete", *args(q)) == msg


def test_closed_port_is_refused(q, qprom, metric):
    url = f"http://127.0.0.1:{_free_port()}"
    t0 = time.monotonic()
    assert err(qprom, "qprom_push", q.string(url), q.s("qbatch"), q.identity()) == E_REFUSED
    assert err(qprom, "qprom_push_delete", q.string(url), q.s("qbatch"), q.identity()) == E_REFUSED
    assert time.monotonic() - t0 < 5


# -------------------------------------------------------------- a real gateway --

@pytest.fixture(scope="module")
def gateway():
    if not PUSHGATEWAY.exists():
        pytest.skip(f"{PUSHGATEWAY} not installed (apt-get install prometheus-pushgateway)")
    port = _free_port()
    log = tempfile.TemporaryFile()
    p = subprocess.Popen([str(PUSHGATEWAY), f"--web.listen-address=127.0.0.1:{port}"],
                         stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(url + "/-/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if p.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail("pushgateway did not become ready:\n" + log.read().decode(errors="replace"))
            time.sleep(0.1)
        yield url
    finally:
        p.terminate()
        p.wait(10)
        log.close()


def gateway_series(url, name):
    """{frozenset(labels.items()): value} of `name` in the gateway's /metrics."""
    with urllib.request.urlopen(url + "/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        m = re.fullmatch(re.escape(name) + r"\{(.*)\} (\S+)", line)
        if m:
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(1)))
            # an empty label value is the same as no label (the gateway adds instance="")
            out[frozenset((k, v) for k, v in labels.items() if v)] = float(m.group(2))
    return out


def test_push_then_delete_on_a_real_gateway(q, qprom, metric, gateway):
    shown = frozenset({"job": "qbatch", "instance": "eod", "path": "a/b c"}.items())   # empty="" shows as absent
    qprom.call("qprom_push", q.string(gateway), q.s("qbatch"), grouping(q))
    got = gateway_series(gateway, METRIC)
    assert got.get(shown) == 3.0, got
    # a second group (no grouping labels) is separate; PUT replaces only its own group
    qprom.call("qprom_push", q.s(gateway), q.s("qbatch"), q.identity())
    got = gateway_series(gateway, METRIC)
    assert got.get(shown) == 3.0 and got.get(frozenset({("job", "qbatch")})) == 3.0, got
    qprom.call("qprom_push_delete", q.string(gateway), q.s("qbatch"), grouping(q))
    got = gateway_series(gateway, METRIC)
    assert shown not in got and frozenset({("job", "qbatch")}) in got, got
    qprom.call("qprom_push_delete", q.string(gateway), q.s("qbatch"), q.identity())
    assert gateway_series(gateway, METRIC) == {}


def test_gateway_rejection_is_4xx(q, qprom, metric, gateway):
    bad = q.dict(q.syms(["bad-label"]), q.syms(["x"]))     # not a valid label name
    assert err(qprom, "qprom_push", q.string(gateway), q.s("qbatch"), bad) == E_4XX
