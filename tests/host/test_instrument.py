"""The exports behind prom.q's default hooks and .z.ph: qprom_defaults, qprom_request,
qprom_conn, qprom_sample, qprom_http (values, exact errors, refcounts via call())."""
import gzip
import time

import pytest
from qhost import QError

Q_EPOCH = 946684800  # 2000.01.01 in unix seconds


def q_now(q):
    """.z.p now: a timestamp atom, nanoseconds since 2000.01.01."""
    return q.p(time.time_ns() - Q_EPOCH * 10**9)


def info(q):
    return q.dict(q.syms(["release", "version", "os", "cores", "licence_expiry"]),
                  q.knk(b"2024.05.31", b"4.1", b"l64", b"8", b"2027.01.01"))


def value(qprom, q, name, labels):
    return qprom.call("qprom_get", q.s(name), labels)


@pytest.fixture(scope="module")
def defaults(q, qprom):
    qprom.call("qprom_defaults", q.s("standard"), q.knk(), info(q))
    return qprom


def test_request_counts_errors_and_duration(q, defaults):
    sync = q.s("sync")
    n0 = value(defaults, q, "kdb_requests_total", sync)
    e0 = value(defaults, q, "kdb_request_errors_total", sync)
    d0 = value(defaults, q, "kdb_request_duration_seconds", sync)
    t0 = q.p(time.time_ns() - Q_EPOCH * 10**9 - 250_000_000)   # 0.25 s ago
    defaults.call("qprom_request", q.s("pg"), t0, q.b(False))
    defaults.call("qprom_request", q.s("pg"), q_now(q), q.b(True))
    assert value(defaults, q, "kdb_requests_total", sync) == n0 + 2
    assert value(defaults, q, "kdb_request_errors_total", sync) == e0 + 1
    took = value(defaults, q, "kdb_request_duration_seconds", sync) - d0
    assert 0.25 <= took < 5.0


@pytest.mark.parametrize("args,msg", [
    (lambda q: (q.s("xx"), q_now(q), q.b(False)), "prom: wrong type for a configuration key"),
    (lambda q: (q.s("pg"), q.j(0), q.b(False)), "prom: value must be a number (short, int, long, real or float)"),
    (lambda q: (q.s("pg"), q_now(q), q.j(1)), "prom: value must be a number (short, int, long, real or float)"),
    (lambda q: (q.s("pg"), q.null(12), q.b(False)), "prom: value is null"),
])
def test_request_bad_inputs(q, defaults, args, msg):
    before = value(defaults, q, "kdb_requests_total", q.s("sync"))
    with pytest.raises(QError) as e:
        defaults.call("qprom_request", *args(q))
    assert str(e.value) == msg
    assert value(defaults, q, "kdb_requests_total", q.s("sync")) == before


def test_connections_by_protocol(q, defaults):
    ipc = q.s("ipc")
    o0 = value(defaults, q, "kdb_connections_opened_total", ipc)
    c0 = value(defaults, q, "kdb_connections_closed_total", ipc)
    g0 = value(defaults, q, "kdb_connections_open", ipc)
    defaults.call("qprom_conn", q.s("po"))
    defaults.call("qprom_conn", q.s("po"))
    defaults.call("qprom_conn", q.s("pc"))
    assert value(defaults, q, "kdb_connections_opened_total", ipc) == o0 + 2
    assert value(defaults, q, "kdb_connections_closed_total", ipc) == c0 + 1
    assert value(defaults, q, "kdb_connections_open", ipc) == g0 + 1
    with pytest.raises(QError, match="^prom: wrong type for a configuration key$"):
        defaults.call("qprom_conn", q.s("zz"))


def test_sample_reads_q_w_by_key(q, defaults):
    keys = ["used", "heap", "peak", "wmax", "mmap", "mphy", "syms", "symw", "newkey"]
    w = q.dict(q.syms(keys), q.vec(7, [1, 2, 3, 4, 5, 6, 7, 8, 9]))
    defaults.call("qprom_sample", w, q.j(123), q.vec(7, [3, 1]))
    one = lambda n: defaults.call("qprom_get", q.s(n), q.identity())
    # every .Q.w key to its own gauge (the unknown key ignored), .z.W's sum, and the open
    # handles by protocol (ipc, ws)
    names = ["kdb_memory_used_bytes", "kdb_memory_heap_bytes", "kdb_memory_heap_peak_bytes",
             "kdb_memory_heap_limit_bytes", "kdb_memory_mapped_bytes", "kdb_memory_physical_bytes",
             "kdb_symbols", "kdb_symbol_memory_bytes", "kdb_output_queue_bytes"]
    assert [one(n) for n in names] == [1, 2, 3, 4, 5, 6, 7, 8, 123]
    assert [value(defaults, q, "kdb_connections_open", q.s(p)) for p in ("ipc", "ws")] == [3, 1]
    with pytest.raises(QError, match="^prom: value must be a number"):
        defaults.call("qprom_sample", q.dict(q.syms(["used"]), q.syms(["x"])), q.identity(), q.identity())


def test_http_response_for_z_ph(q, defaults):
    req = q.knk(b"metrics", q.dict(q.syms(["Accept", "Accept-Encoding"]),
                                   q.knk(b"application/openmetrics-text;version=1.0.0", b"gzip")))
    resp = defaults.call("qprom_http", req)
    head, body = resp.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8" in head
    assert b"Content-Encoding: gzip" in head
    text = gzip.decompress(body)
    assert text.endswith(b"# EOF\n") and b"kdb_requests_total" in text
    plain = defaults.call("qprom_http", q.knk(b"metrics", q.dict(q.syms([]), q.knk())))
    h2, b2 = plain.split(b"\r\n\r\n", 1)
    assert b"text/plain; version=0.0.4" in h2 and not b2.endswith(b"# EOF\n")
    with pytest.raises(QError, match=r"^prom: expected \.z\.ph's"):
        defaults.call("qprom_http", q.s("metrics"))


def test_naming_mode_cannot_change_in_a_process(q, defaults):
    # kdb_info is an info family in standard mode and a gauge in KX mode: switching modes
    # in a running process is refused rather than silently changing a metric's type.
    # (KX mode's 38 families are checked in src/defaults.rs's unit tests.)
    with pytest.raises(QError) as e:
        defaults.call("qprom_defaults", q.s("kx"), q.knk(), info(q))
    assert str(e.value) == "prom: metric exists with another type"
    with pytest.raises(QError, match="^prom: wrong type for a configuration key$"):
        defaults.call("qprom_defaults", q.s("other"), q.knk(), info(q))


# ---- qprom_start / qprom_stop: bad inputs change nothing --------------------------------

def _cfg(q, **kv):
    return q.dict(q.syms(list(kv)), q.knk(*kv.values()))


@pytest.mark.parametrize("make,msg", [
    (lambda q: _cfg(q, nosuch=q.j(1)), "prom: unknown configuration key"),
    (lambda q: _cfg(q, port=q.s("x")), "prom: wrong type for a configuration key"),
    (lambda q: _cfg(q, port=q.j(70000)), "prom: wrong type for a configuration key"),
    (lambda q: _cfg(q, gzip=q.j(1)), "prom: wrong type for a configuration key"),
    (lambda q: _cfg(q, pollTimeout=q.f(-1.0)), "prom: wrong type for a configuration key"),
    (lambda q: q.j(5), "prom: wrong type for a configuration key"),
])
def test_start_refuses_bad_config(q, qprom, make, msg):
    with pytest.raises(QError) as e:
        qprom.call("qprom_start", make(q), q.identity())
    assert str(e.value) == msg
    qprom.call("qprom_stop", q.identity())   # nothing was started: a no-op


def test_start_refuses_a_poll_function_that_is_not_one(q, qprom):
    with pytest.raises(QError) as e:
        qprom.call("qprom_start", _cfg(q, port=q.j(0), bind=q.s("127.0.0.1")), q.j(1))
    assert str(e.value) == "prom: poll callback must be a q function or (::)"


def test_start_twice_and_port_in_use(q, qprom):
    import socket
    cfg = _cfg(q, port=q.j(0), bind=q.s("127.0.0.1"))
    port = qprom.call("qprom_start", cfg, q.identity(), check_refs=False)
    try:
        assert port > 0
        with pytest.raises(QError) as e:
            qprom.call("qprom_start", cfg, q.identity())
        assert str(e.value) == "prom: listener already running: .prom.stop[] first"
    finally:
        qprom.call("qprom_stop", q.identity())
    qprom.call("qprom_stop", q.identity())   # stop is idempotent
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        with pytest.raises(QError) as e:
            qprom.call("qprom_start", _cfg(q, port=q.j(taken), bind=q.s("127.0.0.1")), q.identity())
        assert str(e.value) == "prom: port in use"
    # the failed start left nothing running: a new one succeeds
    qprom.call("qprom_start", cfg, q.identity(), check_refs=False)
    qprom.call("qprom_stop", q.identity())
