"""The stand-in host, proven end to end with the C test extension (fake_ext.c)."""
import ctypes
import fcntl
import math
import os
import struct
import threading
import uuid

import pytest

from qhost import (KB, KC, KE, KF, KG, KH, KI, KJ, KS, KP, KD, KN, KT, KM, KU, KV, KZ, UU,
                   NE, NF, NH, NI, NJ, WH, WI, WJ, Function, HostViolation, KeyedTable,
                   QError, Table, inf_of, null_of)

Q_ONLY = {"krr", "orr", "ee", "k", "dot", "sd1", "sd0", "dl"}


# ------------------------------------------------------------------ load order --

def test_q_only_symbols_bind_to_the_shim_and_the_rest_to_libe(q, fake):
    b = q.bindings(fake)
    for name in Q_ONLY:
        assert b[name] == str(q.shim_path), name
    for name in ("ktn", "kj", "ks", "kf", "knk", "xD", "r0", "r1", "kp"):
        assert b[name] == str(q.libe_path), name


def test_extension_sees_the_shims_krr_not_libes(q, fake):
    libe = ctypes.CDLL(str(q.libe_path), mode=os.RTLD_NOLOAD | os.RTLD_LOCAL)
    libe_krr = ctypes.cast(libe.krr, ctypes.c_void_p).value     # dlsym from libe's handle
    shim_krr = ctypes.cast(q.shim.krr, ctypes.c_void_p).value    # dlsym from the shim's
    assert libe_krr != shim_krr
    assert fake.call("fake_krr_addr", None) == shim_krr
    # and behaviourally: the shim counted the call and recorded the message
    before = q.shim.qshim_krr_calls()
    with pytest.raises(QError):
        fake.call("fake_inc", q.s("x"))
    assert q.shim.qshim_krr_calls() == before + 1


def test_libe_internal_errors_reach_the_shims_indicator(q):
    # libe's d9 calls krr through its PLT, so its error lands in the shim's indicator
    with pytest.raises(QError, match="^length$"):
        q.d9(b"\x01\x00\x00")


# ---------------------------------------------------------- values and errors --

def test_value(q, fake):
    assert fake.call("fake_inc", q.j(41)) == 42
    assert fake.call("fake_inc", q.null("j")) == NJ + 1


def test_symbol_and_float_give_a_dictionary(q, fake):
    name, val = q.s("latency"), q.f(0.25)
    r = fake.call("fake_observe", name, val)
    assert r["name"] == "latency" and r["value"] == 0.25 and r["n"] >= 1
    assert (name.r, val.r) == (0, 0)


def test_error_is_the_exact_static_string(q, fake, any_krr_mode):
    with pytest.raises(QError) as e:
        fake.call("fake_inc", q.f(1.0))
    assert e.value.msg == "prom: bad"
    with pytest.raises(QError, match="^prom: type$"):
        fake.call("fake_observe", q.s("a"), q.j(1))
    with pytest.raises(QError, match="^prom: decoupled$"):
        fake.call("fake_err_decoupled", None)


def test_orr_appends_the_os_error(q, fake):
    with pytest.raises(QError, match="^prom: not watching$"):
        fake.call("fake_kick", 1)
    # a closed/invalid fd given to sd1: sd1 fails with orr's format, as libe's orr
    fn = q.shim.sd1
    fn.restype, fn.argtypes = ctypes.c_void_p, [ctypes.c_int, ctypes.c_void_p]
    assert fn(987654, ctypes.c_void_p(1)) is None
    assert q.shim.qshim_take_error() == b"sd1. OS reports: Bad file descriptor"


def test_example_symbol_and_float(q, fake):
    name, val = q.s("latency"), q.f(0.25)             # owned K atoms (r0'd when dropped)
    r = fake.call("fake_observe", name, val)          # result decoded, then r0'd
    assert r == {"name": "latency", "value": 0.25, "n": r["n"]}
    assert (name.r, val.r) == (0, 0)                  # borrowed (call() checks it too)
    with pytest.raises(QError, match="^prom: type$"):  # krr's exact message
        fake.call("fake_observe", name, q.j(1))
    with fake.call_k("fake_observe", name, val) as k:  # keep the K: type, b9 bytes
        assert k.t == 99 and k.b9()[:4] == bytes([1, 0, 0, 0])


def test_null_return_without_error_is_identity(q, fake):
    assert fake.call("fake_nothing", 1) is None


def test_krr_then_a_valid_pointer_is_a_violation(q, fake):
    with pytest.raises(HostViolation, match="error pending"):
        fake.call("fake_bug_krr_then_value", None)


# ------------------------------------------------------------------ refcounts --

def test_borrowed_arguments_keep_their_refcount(q, fake):
    args = [q.j(1), q.syms(["a", "b"]), q.knk(1, "x", b"str"), q.dict(["k"], [1.5]),
            q.table({"a": [1, 2], "b": ["x", "y"]})]
    for a in args:
        before = a.r
        assert fake.call("fake_identity", a) is not None   # call() checks, too
        assert a.r == before


def test_taking_or_leaking_an_argument_reference_is_caught(q, fake):
    x = q.vec("j", [1, 2, 3])
    with pytest.raises(HostViolation, match="refcounts changed"):
        fake.call("fake_bug_r1_arg", x)
    q._r0(x.ptr)          # undo the leaked reference
    y = q.vec("j", [1, 2, 3])
    q._r1(y.ptr)          # give the buggy r0 something to take, so y stays alive
    with pytest.raises(HostViolation, match="refcounts changed"):
        fake.call("fake_bug_r0_arg", y)


def test_kept_argument_is_r1d_and_released(q, fake):
    x = q.string("kept")
    fake.call("fake_store", x, check_refs=False)
    assert x.r == 1
    assert fake.call("fake_stored", None) == b"kept"
    fake.call("fake_release", None)
    assert x.r == 0


def test_k_memory_leak_is_caught(q, fake):
    arg = q.j(0)
    with q.no_k_leak():
        fake.call("fake_inc", arg)
    with pytest.raises(HostViolation, match="K memory grew"):
        with q.no_k_leak():
            fake.call("fake_bug_leak_k", arg)


# ------------------------------------------------------------------ sd1 loop --

@pytest.fixture
def watch(q, fake):
    yield
    fake.call("fake_unwatch", None)
    assert q.sd1_count() == 0


def stats(fake):
    calls, total, tid, kstatus, kvalue = fake.call("fake_watch_stats", None)
    return dict(calls=calls, total=total, tid=tid, kstatus=kstatus, kvalue=kvalue)


def test_sd1_callback_runs_on_poll_on_the_main_thread(q, fake, watch):
    d = fake.call("fake_watch", False)      # sd1(-fd, cb): the result holds d as passed
    assert d < 0 and q.sd1_fds() == [-d]
    assert fcntl.fcntl(-d, fcntl.F_GETFL) & os.O_NONBLOCK   # negative d: made non-blocking
    s0 = stats(fake)
    t = threading.Thread(target=lambda: fake.call("fake_kick", 3))   # the "HTTP thread"
    t.start()
    t.join()
    assert stats(fake)["calls"] == s0["calls"]      # nothing runs until the loop turns
    assert q.poll(1000) == 1
    s = stats(fake)
    assert s["calls"] == s0["calls"] + 1 and s["total"] == s0["total"] + 3
    assert s["tid"] == threading.main_thread().native_id
    assert q.poll(0) == 0                            # drained: not readable any more


def test_sd1_callback_result_is_r0d(q, fake, watch):
    fake.call("fake_watch", False)
    fake.call("fake_kick", 1)
    q.poll(1000)                                      # warm the pools
    with q.no_k_leak():
        fake.call("fake_kick", 1)
        assert q.poll(1000) == 1


def test_callback_calls_q_through_k0(q, fake, watch):
    seen = []
    q.define(".prom.on_poll", lambda total: seen.append(total) or total * 10)
    fake.call("fake_watch", True)
    fake.call("fake_kick", 2)
    q.poll(1000)
    s = stats(fake)
    assert seen == [s["total"]] and s["kstatus"] == 1 and s["kvalue"] == 10 * s["total"]

    def boom(total):
        raise QError("on_poll failed")
    q.define(".prom.on_poll", boom)
    fake.call("fake_kick", 1)
    q.poll(1000)
    assert stats(fake)["kstatus"] == 2
    assert fake.call("fake_watch_k_error", None) == b"on_poll failed"

    q.define(".prom.on_poll", None)
    fake.call("fake_kick", 1)
    q.poll(1000)
    assert fake.call("fake_watch_k_error", None) == b"host: no q"


def test_sd0_and_sd1_from_inside_callbacks(q, fake):
    fake.call("fake_hop", 5)
    assert q.poll_until(lambda: fake.call("fake_hop_count", None) == 5, timeout=5)
    assert q.sd1_count() == 0


def test_sd1_off_the_main_thread_is_a_violation(q, fake):
    with pytest.raises(HostViolation, match="sd1 called off q's main thread"):
        fake.call("fake_bug_sd1_off_main", None)


def test_closing_a_registered_fd_is_a_violation(q, fake):
    fake.call("fake_bug_close_registered", None)
    with pytest.raises(HostViolation, match="closed while registered"):
        q.poll(100)
    assert q.sd1_count() == 0


# ------------------------------------------------------ k(0) / dot / dl --

def test_k0_dispatches_by_expression(q, fake):
    q.define(".prom.add1", lambda x: x + 1)
    assert fake.call("fake_k", q.s(".prom.add1"), q.j(4)) == 5
    with pytest.raises(QError, match="^host: no q$"):
        fake.call("fake_k", q.s(".prom.nothere"), q.j(4))


def test_dot_applies_symbols_lambdas_and_dl_functions(q, fake):
    q.define("f", lambda a, b: a * b)
    assert fake.call("fake_apply", q.s("f"), q.knk(6, 7)) == 42
    assert fake.call("fake_apply", q.lambda_("f"), q.vec("j", [6, 7])) == 42
    q.define("g", lambda a, b: (_ for _ in ()).throw(QError("g: bad")))
    with pytest.raises(QError, match="^g: bad$"):
        fake.call("fake_apply", q.s("g"), q.knk(1, 2))
    fn = fake.call_k("fake_dl", None)
    assert isinstance(fn.py(), Function)
    assert fake.call("fake_apply", fn, q.knk(3, 4)) == 7
    with pytest.raises(QError, match="^rank$"):
        fake.call("fake_apply", fn, q.knk(3))


# --------------------------------------------------- K building and reading --

ATOMS = [
    ("b", True), ("b", False), ("x", 255), ("h", -5), ("i", 123456), ("j", -(2 ** 40)),
    ("e", 1.5), ("f", -0.1), ("c", b"z"), ("s", "sym"), ("s", ""), ("p", 1234567890123),
    ("m", 5), ("d", 8000), ("z", 0.5), ("n", 10 ** 12), ("u", 61), ("v", 3600), ("t", 42),
    ("g", uuid.UUID("12345678-1234-5678-1234-567812345678")),
]


@pytest.mark.parametrize("t,v", ATOMS)
def test_atoms_round_trip(q, fake, t, v):
    x = q.atom(t, v)
    assert x.py() == v
    assert fake.call("fake_identity", x) == v


@pytest.mark.parametrize("t", "hijepmdznuvtfs")
def test_nulls_and_infinities(q, t):
    n = q.null(t).py()
    if t in "efz":
        assert math.isnan(n)
        assert struct.pack("<f" if t == "e" else "<d", n) == struct.pack(
            "<f" if t == "e" else "<d", NE if t == "e" else NF)
    else:
        assert n == null_of(t)
    if t != "s":
        assert q.inf(t).py() == inf_of(t) and q.inf(t, neg=True).py() == inf_of(t, True)


def test_null_bit_patterns_match_q():
    assert struct.pack("<d", NF).hex() == "000000000000f8ff"
    assert (NH, NI, NJ, WH, WI, WJ) == (-32768, -2 ** 31, -2 ** 63, 32767, 2 ** 31 - 1, 2 ** 63 - 1)


def test_vectors_lists_dicts_tables(q, fake):
    cases = [
        (q.vec("j", [1, None, 3]), [1, NJ, 3]),
        (q.vec("f", [1.5, 2.5]), [1.5, 2.5]),
        (q.vec("b", [True, False]), [True, False]),
        (q.vec("i", []), []),
        (q.syms(["a", "", "ü"]), ["a", "", "ü"]),
        (q.string("héllo"), "héllo".encode()),
        (q.string(b"\xff\x00\xfe"), b"\xff\x00\xfe"),            # non-UTF-8, embedded NUL
        (q.s(b"\xff\xfe"), "\udcff\udcfe"),                      # non-UTF-8 symbol
        (q.bytes_(b"\x00\x01"), b"\x00\x01"),
        (q.knk(1, 2.5, "s", b"str", [1, 2]), [1, 2.5, "s", b"str", [1, 2]]),
        (q.k({"a": 1, "b": "x"}), {"a": 1, "b": "x"}),
        (q.dict(q.syms(["port"]), q.vec("j", [9612])), {"port": 9612}),
        (q.table({"a": [1, 2], "b": ["x", "y"]}), Table(a=[1, 2], b=["x", "y"])),
        (q.keyed_table({"k": ["x"]}, {"v": [1.5]}),
         KeyedTable(Table(k=["x"]), Table(v=[1.5]))),
        (q.identity(), None),
    ]
    for x, want in cases:
        assert x.py() == want, x
        got = fake.call_k("fake_identity", x)
        assert got.py() == want and got.b9() == x.b9()


def test_table_rows(q):
    assert q.table({"a": [1, 2], "b": ["x", "y"]}).py().rows() == [
        {"a": 1, "b": "x"}, {"a": 2, "b": "y"}]


# ------------------------------------------------------------------- b9 bytes --

def ipc(body: bytes) -> bytes:
    """q IPC framing as -8! writes it: little-endian, async, uncompressed, length."""
    return struct.pack("<bbbbi", 1, 0, 0, 0, 8 + len(body)) + body


def test_b9_bytes_of_a_dictionary_result(q, fake):
    r = fake.call_k("fake_observe", q.s("lat"), q.f(0.5))
    n = r.py()["n"]
    want = ipc(
        bytes([99])                                                   # dict
        + bytes([KS, 0]) + struct.pack("<i", 3) + b"name\0value\0n\0"  # `name`value`n
        + bytes([0, 0]) + struct.pack("<i", 3)                        # general list of 3
        + bytes([256 - KS]) + b"lat\0"                                # `lat
        + bytes([256 - KF]) + struct.pack("<d", 0.5)                  # 0.5
        + bytes([256 - KJ]) + struct.pack("<q", n))                   # n
    assert r.b9() == want
    back = q.d9(want)
    assert back.py() == r.py()


# ---------------------------------------------------------------- concurrency --

def test_exports_called_concurrently_from_secondary_threads(q, fake):
    per = 300
    results = {}

    def worker(i):
        name, val = q.s(f"m{i}"), q.f(float(i))          # made and dropped on this thread
        base = q.mem()
        for _ in range(per):
            r = fake.call("fake_observe", name, val)
            assert r["name"] == f"m{i}" and r["value"] == float(i)
            with pytest.raises(QError, match="^prom: type$"):     # thread-local error
                fake.call("fake_observe", val, name)
        results[i] = q.mem() - base
        del name, val

    before = fake.call("fake_observe", q.s("x"), q.f(0.0))["n"]
    q.in_threads(4, worker)
    assert fake.call("fake_observe", q.s("x"), q.f(0.0))["n"] == before + 4 * per + 1
    assert results == {i: 0 for i in range(4)}


# ------------------------------------------------------------ valgrind self-test --

@pytest.mark.valgrind_selftest
def test_selftest_malloc_leak(fake, q):
    assert fake.call("fake_bug_malloc_leak", None) == 48


@pytest.mark.valgrind_selftest
def test_selftest_overread(fake, q):
    fake.call("fake_bug_overread", None)


def test_memory_bugs_are_gated(q, fake):
    if os.environ.get("QHOST_ENABLE_BUGS") == "1":
        pytest.skip("bugs enabled")
    with pytest.raises(QError, match="bugs disabled"):
        fake.call("fake_bug_malloc_leak", None)
