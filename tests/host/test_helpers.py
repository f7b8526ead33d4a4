"""The exports behind the helpers for user code and the handler middleware
(src/ffi/helpers.rs): qprom_elapsed (.prom.time, .prom.obsSince), qprom_set_now
(.prom.setToCurrentTime), qprom_mirror (.prom.mirror), qprom_middleware (.prom.init's
middleware keys), qprom_enter and qprom_request_ex (the default before_X / after_X /
error_X hooks with middleware on). Values, exact error texts, refcounts (ext.call), no
K leaks.

The registry and the middleware configuration are process-global: every test uses its
own metric names, configures the middleware it needs, and compares deltas."""
import gc
import shutil
import subprocess
import time

import pytest

from qhost import QError

Q_EPOCH = 946684800  # 2000.01.01 in unix seconds
WRONG_TYPE = "prom: operation not supported by this metric type"
VALUE_TYPE = "prom: value must be a number (short, int, long, real or float)"
CONFIG_TYPE = "prom: wrong type for a configuration key"
CONFIG_KEY = "prom: unknown configuration key"


def q_ts(q, unix_secs):
    """A timestamp atom for unix seconds."""
    return q.p(int(round((unix_secs - Q_EPOCH) * 1e9)))


def q_now(q, ago=0.0):
    return q.p(time.time_ns() - Q_EPOCH * 10**9 - int(ago * 1e9))


def no_leak(q):
    """q.no_k_leak() after a garbage collection (K objects kept by reference cycles of
    earlier tests must not be freed inside the block)."""
    gc.collect()
    return q.no_k_leak()


def create(q, ext, name, mtype, labels=None, **extra):
    keys, vals = ["name", "type"], [q.s(name), q.s(mtype)]
    if labels:
        keys.append("labels")
        vals.append(q.syms(labels))
    for k, v in extra.items():
        keys.append(k)
        vals.append(v)
    ext.call("qprom_create", q.dict(q.syms(keys), q.knk(*vals)))
    return name


def samples(ext, q, fmt=None):
    """The exposition as {series text: value text}."""
    text = ext.call("qprom_render", q.s(fmt) if fmt else q.identity()).decode()
    out = {}
    # "\n" only: label values may hold other characters str.splitlines() breaks at
    # (U+2028, \x1c...; the fuzzer's hook names in qprom_hook_errors_total have them)
    for line in text.split("\n"):
        if line and not line.startswith("#"):
            key, val = line.rsplit(" ", 1)
            out[key] = val
    return out


def sample(ext, q, key, fmt=None, default=None):
    v = samples(ext, q, fmt).get(key)
    return default if v is None else float(v)


def get(ext, q, name, labels=None):
    return ext.call("qprom_get", q.s(name), labels if labels is not None else q.identity())


def config(q, **kv):
    """A middleware configuration dictionary (general list of values)."""
    conv = {True: lambda: q.b(True), False: lambda: q.b(False)}
    vals = []
    for v in kv.values():
        if isinstance(v, bool):
            vals.append(conv[v]())
        elif isinstance(v, list) and v and isinstance(v[0], str):
            vals.append(q.syms(v))
        elif isinstance(v, list):
            vals.append(q.vec("f", v))
        else:
            vals.append(v)
    return q.dict(q.syms(list(kv)), q.knk(*vals))


ALL_ON = dict(inflight=True, sizes=True, httpStatus=True, user=True, functions=["getTrades", ".u.upd"])


@pytest.fixture(scope="module")
def ext(q, qprom):
    info = q.dict(q.syms(["release", "version", "os", "cores", "licence_expiry"]),
                  q.knk(b"2024.05.31", b"4.1", b"l64", b"8", b"2027.01.01"))
    qprom.call("qprom_defaults", q.s("standard"), q.knk(), info)
    yield qprom
    qprom.call("qprom_middleware", q.identity())   # leave the middleware off


# ------------------------------------------------------------------ time, obsSince --

def test_elapsed_observes_histograms_and_summaries(q, ext):
    h = create(q, ext, "th_elapsed_seconds", "histogram", labels=["fn"])
    s = create(q, ext, "th_elapsed_sum_seconds", "summary")
    with no_leak(q):
        assert ext.call("qprom_elapsed", q.s(h), q.s("a"), q_now(q, ago=0.25)) is None
        ext.call("qprom_elapsed", q.s(h), q.s("a"), q_now(q))
        ext.call("qprom_elapsed", q.s(s), q.identity(), q_now(q, ago=1.5))
    assert sample(ext, q, f'{h}_count{{fn="a"}}') == 2
    assert 0.25 <= get(ext, q, h, q.s("a")) < 5
    assert sample(ext, q, f"{s}_count") == 1
    assert 1.5 <= get(ext, q, s) < 6


def test_elapsed_sets_a_gauge_and_clamps_negative_durations(q, ext):
    g = create(q, ext, "th_last_seconds", "gauge")
    ext.call("qprom_elapsed", q.s(g), q.identity(), q_now(q, ago=2))
    assert 2 <= get(ext, q, g) < 7
    ext.call("qprom_elapsed", q.s(g), q.identity(), q_now(q, ago=-60))   # in the future
    assert get(ext, q, g) == 0.0


def test_elapsed_by_series_id(q, ext):
    h = create(q, ext, "th_elapsed_id_seconds", "histogram", labels=["fn"])
    sid = ext.call("qprom_series", q.s(h), q.s("x"), q.knk(), q.knk())
    ext.call("qprom_elapsed", q.j(sid), q.identity(), q_now(q, ago=0.5))
    assert 0.5 <= get(ext, q, h, q.s("x")) < 5


@pytest.mark.parametrize("t0,msg", [
    (lambda q: q.n(0), "prom: start time must be a timestamp (.z.p)"),
    (lambda q: q.j(0), "prom: start time must be a timestamp (.z.p)"),
    (lambda q: q.identity(), "prom: start time must be a timestamp (.z.p)"),
    (lambda q: q.null("p"), "prom: value is null"),
    (lambda q: q.inf("p"), "prom: value must be finite"),
])
def test_elapsed_bad_start(q, ext, t0, msg):
    h = create(q, ext, "th_elapsed_bad_seconds", "histogram", labels=["fn"])
    with pytest.raises(QError) as e:
        ext.call("qprom_elapsed", q.s(h), q.s("a"), t0(q))
    assert str(e.value) == msg
    assert not any(k.startswith(h) for k in samples(ext, q)), "nothing created"


def test_elapsed_refuses_counters_without_creating_a_series(q, ext):
    c = create(q, ext, "th_elapsed_total", "counter", labels=["fn"])
    with pytest.raises(QError, match=f"^{WRONG_TYPE}$"):
        ext.call("qprom_elapsed", q.s(c), q.s("a"), q_now(q))
    assert not any(k.startswith(c) for k in samples(ext, q))
    with pytest.raises(QError, match="^prom: unknown metric$"):
        ext.call("qprom_elapsed", q.s("th_nope_seconds"), q.identity(), q_now(q))


# ----------------------------------------------------------------- setToCurrentTime --

def test_set_now_sets_unix_seconds_on_gauges_only(q, ext):
    g = create(q, ext, "th_now_seconds", "gauge", labels=["job"])
    before = time.time()
    with no_leak(q):
        ext.call("qprom_set_now", q.s(g), q.s("eod"))
    assert before - 0.001 <= get(ext, q, g, q.s("eod")) <= time.time() + 0.001
    c = create(q, ext, "th_now_total", "counter")
    with pytest.raises(QError, match=f"^{WRONG_TYPE}$"):
        ext.call("qprom_set_now", q.s(c), q.identity())
    with pytest.raises(QError, match="^prom: label count mismatch$"):
        ext.call("qprom_set_now", q.s(g), q.identity())


# ---------------------------------------------------------------------------- mirror --

def created(ext, q, base, labels):
    return sample(ext, q, f"{base}_created{{{labels}}}", fmt="openmetrics")


def test_mirror_sets_value_and_created(q, ext):
    c = create(q, ext, "th_mirror_total", "counter", labels=["src"])
    lb = 'src="tp"'
    with no_leak(q):
        ext.call("qprom_mirror", q.s(c), q.s("tp"), q.j(100), q_ts(q, 1577836800))
    assert get(ext, q, c, q.s("tp")) == 100
    assert created(ext, q, "th_mirror", lb) == 1577836800
    # higher, created (::): value moves, created kept
    ext.call("qprom_mirror", q.s(c), q.s("tp"), q.j(150), q.identity())
    assert (get(ext, q, c, q.s("tp")), created(ext, q, "th_mirror", lb)) == (150, 1577836800)
    # lower, created (::): a reset, never a decrease: created moves to now
    before = time.time()
    ext.call("qprom_mirror", q.s(c), q.s("tp"), q.j(7), q.identity())
    assert get(ext, q, c, q.s("tp")) == 7
    assert before - 0.001 <= created(ext, q, "th_mirror", lb) <= time.time() + 0.001
    # lower with a created: that one
    ext.call("qprom_mirror", q.s(c), q.s("tp"), q.j(3), q_ts(q, 1609459200.5))
    assert (get(ext, q, c, q.s("tp")), created(ext, q, "th_mirror", lb)) == (3, 1609459200.5)
    # a created is always applied, also without a reset (the source restarted between reads)
    ext.call("qprom_mirror", q.s(c), q.s("tp"), q.j(10), q_ts(q, 1640995200))
    assert created(ext, q, "th_mirror", lb) == 1640995200
    # floats too
    ext.call("qprom_mirror", q.s(c), q.s("tp"), q.f(10.5), q.identity())
    assert get(ext, q, c, q.s("tp")) == 10.5


def test_mirror_is_exact_beyond_2_pow_53(q, ext):
    c = create(q, ext, "th_mirror_big_total", "counter")
    big = 2**53 + 1
    ext.call("qprom_mirror", q.s(c), q.identity(), q.j(big), q.identity())
    assert samples(ext, q)["th_mirror_big_total"] == str(big)
    ext.call("qprom_mirror", q.s(c), q.identity(), q.j(big + 2), q.identity())
    assert samples(ext, q)["th_mirror_big_total"] == str(big + 2)


@pytest.mark.parametrize("v,cr,msg", [
    (lambda q: q.j(-1), lambda q: q.identity(), "prom: counter value must be >= 0"),
    (lambda q: q.f(float("inf")), lambda q: q.identity(), "prom: value must be finite"),
    (lambda q: q.null("j"), lambda q: q.identity(), "prom: value is null"),
    (lambda q: q.s("x"), lambda q: q.identity(), VALUE_TYPE),
    (lambda q: q.j(1), lambda q: q.d(0), "prom: created must be a timestamp or (::)"),
    (lambda q: q.j(1), lambda q: q.j(0), "prom: created must be a timestamp or (::)"),
    (lambda q: q.j(1), lambda q: q.null("p"), "prom: value is null"),
])
def test_mirror_bad_inputs_change_nothing(q, ext, v, cr, msg):
    c = create(q, ext, "th_mirror_bad_total", "counter", labels=["src"])
    with pytest.raises(QError) as e:
        ext.call("qprom_mirror", q.s(c), q.s("new"), v(q), cr(q))
    assert str(e.value) == msg
    assert not any(k.startswith(c) for k in samples(ext, q))


def test_mirror_counters_only(q, ext):
    g = create(q, ext, "th_mirror_gauge", "gauge")
    with pytest.raises(QError, match=f"^{WRONG_TYPE}$"):
        ext.call("qprom_mirror", q.s(g), q.identity(), q.j(1), q.identity())


# --------------------------------------------------------------- middleware config --

def test_middleware_flags(q, ext):
    with no_leak(q):
        r = ext.call("qprom_middleware", q.identity())
    assert r == {"inflight": False, "sizes": False, "any": False}
    assert ext.call("qprom_middleware", q.dict(q.syms([]), q.knk())) == r
    # a boolean vector of values, as `inflight`sizes!10b
    r = ext.call("qprom_middleware", q.dict(q.syms(["inflight", "sizes"]), q.vec("b", [True, False])))
    assert r == {"inflight": True, "sizes": False, "any": True}
    r = ext.call("qprom_middleware", config(q, user=True))
    assert r == {"inflight": False, "sizes": False, "any": True}
    r = ext.call("qprom_middleware", config(q, functions=["f"], sizes=False))
    assert r["any"] and not r["sizes"]
    r = ext.call("qprom_middleware", config(q, sizes=True, sizeBuckets=[100.0, 1000.0], buckets=[0.1, 1.0]))
    assert r == {"inflight": False, "sizes": True, "any": True}
    ext.call("qprom_middleware", q.identity())


@pytest.mark.parametrize("cfg,msg", [
    (lambda q: config(q, inflite=True), CONFIG_KEY),
    (lambda q: q.dict(q.syms(["inflite"]), q.vec("b", [True])), CONFIG_KEY),
    (lambda q: config(q, inflight=q.j(1)), CONFIG_TYPE),
    (lambda q: config(q, functions=q.j(1)), CONFIG_TYPE),
    (lambda q: config(q, sizeBuckets=q.s("x")), CONFIG_TYPE),
    (lambda q: q.dict(q.syms(["functions"]), q.vec("b", [True])), CONFIG_TYPE),
    (lambda q: config(q, sizes=True, sizeBuckets=[2.0, 1.0]), "prom: buckets must be finite, sorted and unique"),
    (lambda q: config(q, functions=q.knk(q.s("f"), 1)), CONFIG_TYPE),
    (lambda q: q.s("inflight"), CONFIG_TYPE),
])
def test_middleware_bad_config(q, ext, cfg, msg):
    with pytest.raises(QError) as e:
        ext.call("qprom_middleware", cfg(q))
    assert str(e.value) == msg


# ------------------------------------------------------- enter and request_ex (hooks) --

def rex(ext, q, h, t0=None, failed=False, req=None, resp=None, user=None, fn=None):
    """request_ex as the q hooks call it; None -> (::)."""
    k = lambda v: q.identity() if v is None else v
    return ext.call("qprom_request_ex", q.s(h), t0 if t0 is not None else q_now(q),
                    q.b(failed), k(req), k(resp), k(user), k(fn))


def test_request_ex_without_middleware_records_as_request(q, ext):
    ext.call("qprom_middleware", q.identity())
    sync = q.s("sync")
    n0 = get(ext, q, "kdb_requests_total", sync)
    e0 = get(ext, q, "kdb_request_errors_total", sync)
    with no_leak(q):
        assert rex(ext, q, "pg", req=q.j(10), user=q.s("u"), fn=q.s("f")) is None
        rex(ext, q, "pg", failed=True, t0=q_now(q, ago=0.1))
    assert get(ext, q, "kdb_requests_total", sync) == n0 + 2
    assert get(ext, q, "kdb_request_errors_total", sync) == e0 + 1


def test_in_flight_up_at_enter_down_at_finish(q, ext):
    ext.call("qprom_middleware", config(q, inflight=True))
    g = lambda h: get(ext, q, "kdb_requests_in_flight", q.s(h))
    base = g("sync")
    with no_leak(q):
        ext.call("qprom_enter", q.s("pg"))
        ext.call("qprom_enter", q.s("pg"))
        ext.call("qprom_enter", q.s("ts"))
    assert (g("sync"), g("timer")) == (base + 2, 1)
    rex(ext, q, "pg")
    rex(ext, q, "pg", failed=True)
    rex(ext, q, "ts")
    assert (g("sync"), g("timer")) == (base, 0)
    rex(ext, q, "ts")       # an exit without its entry: never below zero
    assert g("timer") == 0
    with pytest.raises(QError, match=f"^{CONFIG_TYPE}$"):
        ext.call("qprom_enter", q.s("zz"))


def test_sizes_ipc_and_http(q, ext):
    ext.call("qprom_middleware", config(q, sizes=True))
    count = lambda fam, h: sample(ext, q, f'{fam}_count{{handler="{h}"}}', default=0)
    total = lambda fam, h: sample(ext, q, f'{fam}_sum{{handler="{h}"}}', default=0)
    req, resp = "kdb_request_size_bytes", "kdb_response_size_bytes"
    r0 = {h: (count(req, h), total(req, h)) for h in ("sync", "async", "http_get", "websocket")}
    s0 = {h: (count(resp, h), total(resp, h)) for h in ("sync", "http_get")}
    rex(ext, q, "pg", req=q.j(30), resp=q.j(1000))
    rex(ext, q, "pg", req=q.j(40), resp=q.j(5), failed=True)      # no response size
    rex(ext, q, "pg", req=q.null("j"), resp=q.j(8))                  # a trapped -22! (0N)
    rex(ext, q, "ps", req=q.j(50))
    rex(ext, q, "ws", req=q.string(b"hello"))
    rex(ext, q, "ws", req=q.bytes_(b"\x00\x01\x02"))
    http_req = q.knk(b"index.html?x=1", q.dict(q.syms(["Host", "Accept"]), q.knk(b"localhost:5000", b"*/*")))
    http_resp = q.string(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
    with no_leak(q):
        rex(ext, q, "ph", req=http_req, resp=http_resp)
    assert (count(req, "sync"), total(req, "sync")) == (r0["sync"][0] + 2, r0["sync"][1] + 70)
    assert (count(resp, "sync"), total(resp, "sync")) == (s0["sync"][0] + 2, s0["sync"][1] + 1008)
    assert (count(req, "async"), total(req, "async")) == (r0["async"][0] + 1, r0["async"][1] + 50)
    assert (count(req, "websocket"), total(req, "websocket")) == (r0["websocket"][0] + 2, r0["websocket"][1] + 8)
    http_bytes = len("index.html?x=1") + len("Host") + len("localhost:5000") + len("Accept") + len("*/*")
    assert total(req, "http_get") == r0["http_get"][1] + http_bytes
    assert total(resp, "http_get") == s0["http_get"][1] + len(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
    # no response family for async messages, the timer has no request size
    assert f'{resp}_count{{handler="async"}}' not in samples(ext, q)
    assert f'{req}_count{{handler="timer"}}' not in samples(ext, q)


def test_http_requests_by_code_and_method(q, ext):
    ext.call("qprom_middleware", config(q, httpStatus=True))
    fam = "kdb_http_requests_total"
    v = lambda code, m: sample(ext, q, f'{fam}{{code="{code}",method="{m}"}}', default=0)
    before = {k: v(*k) for k in [("200", "GET"), ("404", "POST"), ("error", "GET"), ("unknown", "GET"), ("503", "GET")]}
    get_ = q.knk(b"x", q.dict(q.syms([]), q.knk()))
    rex(ext, q, "ph", req=get_, resp=q.string(b"HTTP/1.1 200 OK\r\n\r\n"))
    rex(ext, q, "ph", req=get_, resp=q.string(b"HTTP/1.0 503 Service Unavailable\r\n\r\n\xff\xfe"))  # binary body
    rex(ext, q, "pp", req=get_, resp=q.string(b"HTTP/1.1 404 Not Found\r\n\r\n"))
    rex(ext, q, "ph", req=get_, resp=q.string(b"<html>"))
    rex(ext, q, "ph", req=get_, resp=q.string(b"type"), failed=True)
    rex(ext, q, "pg", resp=q.string(b"HTTP/1.1 200 OK\r\n\r\n"))                     # not HTTP
    after = {k: v(*k) for k in before}
    assert {k: after[k] - before[k] for k in before} == {
        ("200", "GET"): 1, ("404", "POST"): 1, ("error", "GET"): 1, ("unknown", "GET"): 1, ("503", "GET"): 1}


def test_user_and_function_families(q, ext):
    ext.call("qprom_middleware", config(q, user=True, functions=["getTrades", ".u.upd"]))
    ud, ue = "kdb_user_request_duration_seconds", "kdb_user_request_errors_total"
    fd, fe = "kdb_function_request_duration_seconds", "kdb_function_request_errors_total"
    s = samples(ext, q)
    # allowed functions are there from the start, at zero, for sync and async
    for h in ("sync", "async"):
        for f in ("getTrades", ".u.upd"):
            assert f'{fe}{{handler="{h}",function="{f}"}}' in s
    keys = [f'{ud}_count{{handler="sync",user="alice"}}', f'{ud}_sum{{handler="sync",user="alice"}}',
            f'{ue}{{handler="sync",user="alice"}}', f'{ud}_count{{handler="async",user="bob"}}',
            f'{fd}_count{{handler="sync",function="getTrades"}}', f'{fe}{{handler="sync",function="getTrades"}}',
            f'{fd}_count{{handler="async",function=".u.upd"}}']
    before = {k: float(s.get(k, 0)) for k in keys}    # the families outlive tests: deltas
    with no_leak(q):
        rex(ext, q, "pg", t0=q_now(q, ago=0.2), user=q.s("alice"), fn=q.s("getTrades"))
        rex(ext, q, "pg", failed=True, user=q.s("alice"), fn=q.s("getTrades"))
        rex(ext, q, "ps", user=q.string(b"bob"), fn=q.s(".u.upd"))
        rex(ext, q, "pg", user=q.s("alice"), fn=q.s("notListed"))
        rex(ext, q, "pg", user=q.s("alice"), fn=q.string(b"getTrades"))   # a string is no call
        rex(ext, q, "ts", user=q.s("alice"))                                # no user for the timer
    s = samples(ext, q)
    delta = {k: float(s[k]) - before[k] for k in keys}
    # alice: 4 sync requests (one failed), the timer has no user; bob: 1 async;
    # getTrades: 2 sync calls by name (one failed), .u.upd: 1 async
    assert [delta[k] for k in keys if "_sum" not in k] == [4, 1, 1, 2, 1, 1]
    assert 0.2 <= delta[keys[1]] < 0.2 + 5, "one request started 0.2 s ago, the rest just now"
    assert f'{ud}_count{{handler="timer",user="alice"}}' not in s
    assert not any('function="notListed"' in k for k in s)


def test_request_ex_bad_inputs_record_nothing(q, ext):
    ext.call("qprom_middleware", config(q, inflight=True))
    sync = q.s("sync")
    n0 = get(ext, q, "kdb_requests_total", sync)
    ext.call("qprom_enter", q.s("pg"))
    g0 = get(ext, q, "kdb_requests_in_flight", sync)
    for args, msg in [
        ((q.s("xx"), q_now(q), q.b(False)), CONFIG_TYPE),
        ((q.s("pg"), q.j(0), q.b(False)), VALUE_TYPE),
        ((q.s("pg"), q_now(q), q.j(1)), VALUE_TYPE),
        ((q.s("pg"), q.null("p"), q.b(False)), "prom: value is null"),
    ]:
        with pytest.raises(QError) as e:
            ext.call("qprom_request_ex", *args, q.identity(), q.identity(), q.identity(), q.identity())
        assert str(e.value) == msg
    assert get(ext, q, "kdb_requests_total", sync) == n0
    assert get(ext, q, "kdb_requests_in_flight", sync) == g0
    # extras of unexpected types are ignored, the request is still recorded
    rex(ext, q, "pg", req=q.s("x"), resp=q.f(1.5), user=q.j(1), fn=q.knk(q.s("f"), 1))
    assert get(ext, q, "kdb_requests_total", sync) == n0 + 1
    assert get(ext, q, "kdb_requests_in_flight", sync) == g0 - 1


def test_concurrent_requests_keep_in_flight_exact(q, ext):
    """Multithreaded input (-p -N): hooks on several threads at once."""
    ext.call("qprom_middleware", config(q, inflight=True, sizes=True, user=True, functions=["f"]))
    sync = q.s("sync")
    n0 = get(ext, q, "kdb_requests_total", sync)
    g0 = get(ext, q, "kdb_requests_in_flight", sync)
    ukey = 'kdb_user_request_duration_seconds_count{{handler="sync",user="user{}"}}'
    s = samples(ext, q)
    u0 = [float(s.get(ukey.format(i), 0)) for i in range(4)]
    rounds = 500
    failures = []

    def work(i):
        try:
            h, u, f, sz = q.s("pg"), q.s(f"user{i}"), q.s("f"), q.j(100)
            for _ in range(rounds):
                ext.call("qprom_enter", h)
                ext.call("qprom_request_ex", h, q_now(q), q.b(False), sz, sz, u, f)
            del h, u, f, sz
        except BaseException as e:  # noqa: BLE001
            failures.append(repr(e))

    gc.collect()
    gc.disable()
    try:
        q.in_threads(4, work)
    finally:
        gc.enable()
    assert failures == []
    assert get(ext, q, "kdb_requests_total", sync) == n0 + 4 * rounds
    assert get(ext, q, "kdb_requests_in_flight", sync) == g0
    s = samples(ext, q)
    assert [float(s[ukey.format(i)]) - u0[i] for i in range(4)] == [rounds] * 4
    ext.call("qprom_middleware", q.identity())


def test_families_are_lint_clean_names(q, ext):
    ext.call("qprom_middleware", config(q, **ALL_ON))
    meta = ext.call("qprom_meta", q.identity())
    rows = {r["metric"]: r["mtype"] for r in meta.rows()}
    assert rows["kdb_requests_in_flight"] == "gauge"
    assert rows["kdb_request_size_bytes"] == rows["kdb_response_size_bytes"] == "histogram"
    assert rows["kdb_http_requests_total"] == "counter"
    assert rows["kdb_user_request_duration_seconds"] == rows["kdb_function_request_duration_seconds"] == "histogram"
    assert rows["kdb_user_request_errors_total"] == rows["kdb_function_request_errors_total"] == "counter"
    rex(ext, q, "pg", req=q.j(20), resp=q.j(40), user=q.s("alice"), fn=q.s("getTrades"))
    rex(ext, q, "ph", req=q.knk(b"x", q.dict(q.syms([]), q.knk())), resp=q.string(b"HTTP/1.1 200 OK\r\n\r\n"))
    ext.call("qprom_middleware", q.identity())
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed")
    text = ext.call("qprom_render", q.identity())
    r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True)
    # other tests' metrics (no help text) are not ours to judge: only the kdb_ families
    problems = [l for l in (r.stdout + r.stderr).decode().splitlines() if l.startswith("kdb_")]
    assert problems == []
