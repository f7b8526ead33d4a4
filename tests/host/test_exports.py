"""Every qprom_* export of the real libqprom.so, called as q calls a `2:` function.

What each test checks, besides its own assertions (conftest/qhost do these for every call):
- argument reference counts are the same after the call (ext.call's check_refs, on by
  default and never turned off here), also when the call fails;
- no contract violation (krr + a valid pointer, sd1 off the main thread, ...).

The family registry is process-global inside the .so and outlives each test: every test
uses its own metric names (`nm(...)`, prefixed `tx_<test>_`) and never assumes the
registry is empty. Failing calls are checked with the exact `prom: ...` text of
src/error.rs and with a snapshot of the whole registry (`state()`) taken before and
after: an error must change nothing.

Loop sizes (see UNDER_VALGRIND): 4 threads x 20,000 incs (QPROM_THREAD_INCS), 3 x 2,000
observing writers (QPROM_THREAD_OBS), 4 x 1,500 mixed operations (QPROM_MIXED_OPS), 50
leak-check rounds (QPROM_LEAK_ROUNDS); a tenth or fifth of that under valgrind unless the
variable is set.
"""
from __future__ import annotations

import ctypes
import gc
import itertools
import math
import os
import random
import re
import struct
import threading
import traceback
import uuid

import pytest

from qhost import K, KF, KJ, KS, QError, Table, WJ

# ------------------------------------------------------------- messages (error.rs) --

INVALID_METRIC_NAME = "prom: invalid metric name"
INVALID_LABEL_NAME = "prom: invalid label name"
RESERVED_LABEL_NAME = "prom: reserved label name"
RESERVED_METRIC_NAME = "prom: reserved metric name (names beginning with _ are reserved)"
INFO_UNIT = "prom: an info metric takes no unit"
DUPLICATE_LABEL_NAME = "prom: duplicate label name"
INVALID_UNIT = "prom: metric name must end with _<unit>, unit [a-zA-Z0-9_]+"
LABEL_COUNT = "prom: label count mismatch"
TYPE_CONFLICT = "prom: metric exists with another type"
LABEL_CONFLICT = "prom: metric exists with other label names"
NAME_COLLISION = "prom: metric name collides with another metric's samples"
UNKNOWN_METRIC = "prom: unknown metric"
UNKNOWN_SERIES = "prom: unknown series"
SERIES_LIMIT = "prom: too many series"
NAN_VALUE = "prom: value is NaN"
NOT_FINITE = "prom: value must be finite"
NEGATIVE_INCREMENT = "prom: counter increment must be >= 0"
NEGATIVE_COUNTER = "prom: counter value must be >= 0"
COUNTER_DECREASE = "prom: counter cannot decrease"
INVALID_BUCKETS = "prom: buckets must be finite, sorted and unique"
INVALID_QUANTILES = "prom: quantiles must be in [0,1], sorted and unique"
INVALID_WINDOW = "prom: summary window must be > 0 with 1 to 1024 age buckets"
INVALID_PARAMS = "prom: params not valid for this metric type"
WRONG_TYPE = "prom: operation not supported by this metric type"
INVALID_SERIES_LIMIT = "prom: series limit must be >= 1"
NAME_TYPE = "prom: metric name must be a symbol or string"
TARGET_TYPE = "prom: expected a metric name (symbol or string) or a series id (long)"
LABELS_TYPE = "prom: labels must be a symbol, string, list of them, or a dictionary"
LABEL_NAMES = "prom: label names do not match the metric's"
HANDLE_WITH_LABELS = "prom: a series id takes no labels"
TEXT_ENCODING = "prom: text must be UTF-8 without NUL bytes"
VALUE_TYPE = "prom: value must be a number (short, int, long, real or float)"
NULL_VALUE = "prom: value is null"
PARAMS_TYPE = "prom: params must be a list of numbers"
UNKNOWN_TYPE = "prom: metric type must be one of counter gauge histogram summary info"
DEFINITION_TYPE = "prom: metric definition must be a dictionary with symbol keys"
UNKNOWN_OPTION = "prom: unknown key in metric definition"
MISSING_OPTION = "prom: metric definition needs `name and `type"
OPTION_TYPE = "prom: wrong type for a key of the metric definition"
FORMAT_TYPE = "prom: format must be `text, `openmetrics or `protobuf"
WHOLE_NUMBER = "prom: expected a whole number (short, int or long)"

DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]
DEFAULT_LIMIT = 10_000          # documented default series limit (docs, registry.rs DEFAULT_SERIES_LIMIT)
INF = math.inf

# Under valgrind (run.sh --valgrind, what `make test` runs) every call costs ~50x: the
# loops of the thread and leak tests run fewer iterations there unless told otherwise.
UNDER_VALGRIND = "vgpreload" in os.environ.get("LD_PRELOAD", "")


def scaled(env, normal, valgrind):
    v = os.environ.get(env)
    return int(v) if v else (valgrind if UNDER_VALGRIND else normal)


THREAD_INCS = scaled("QPROM_THREAD_INCS", 20_000, 2_000)   # per thread, 4 threads
THREAD_OBS = scaled("QPROM_THREAD_OBS", 2_000, 400)         # per writer, 3 writers
MIXED_OPS = scaled("QPROM_MIXED_OPS", 1_500, 300)           # per thread, 4 threads
LEAK_ROUNDS = scaled("QPROM_LEAK_ROUNDS", 50, 10)

EXPORTS = ["qprom_create", "qprom_series", "qprom_inc", "qprom_dec", "qprom_set", "qprom_obs",
           "qprom_get", "qprom_del", "qprom_render", "qprom_metrics", "qprom_meta", "qprom_limit"]


# ------------------------------------------------------------------------ helpers --

_serial = itertools.count()


@pytest.fixture
def ext(qprom):
    return qprom


@pytest.fixture
def nm(request):
    """nm("c") -> a metric name unique to this test (same suffix, same name)."""
    base = re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:60]
    n = next(_serial)
    return lambda suffix="m": f"tx_{base}_{n}_{suffix}"


def no_leak(q):
    """q.no_k_leak() after a garbage collection, so that K objects kept by reference
    cycles of earlier tests (e.g. a failure's traceback) are not freed inside the block."""
    gc.collect()
    return q.no_k_leak()


def call(ext, name, *args):
    return ext.call(name, *args)          # check_refs=True (default): refcounts compared


def err(ext, name, *args) -> str:
    """The exact q error message of a call that must fail."""
    with pytest.raises(QError) as e:
        ext.call(name, *args)
    return e.value.msg


def defn(q, **kv) -> K:
    """A metric definition as q writes it: symbol keys ! general list of values."""
    return q.dict(q.syms(list(kv)), q.knk(*kv.values()))


def create(q, ext, name, mtype, **kv) -> str:
    r = call(ext, "qprom_create", defn(q, name=name, type=mtype, **kv))
    assert r == name
    return name


def get(q, ext, target, labels=None) -> float:
    return call(ext, "qprom_get", target, labels)


def meta_row(ext, name) -> dict | None:
    m = call(ext, "qprom_meta", None)
    rows = [r for r in m.rows() if r["metric"] == name]
    assert len(rows) <= 1
    return rows[0] if rows else None


def metric_rows(ext, name) -> list[dict]:
    return [r for r in call(ext, "qprom_metrics", None).rows() if r["metric"] == name]


def render(ext, fmt=None) -> str:
    return call(ext, "qprom_render", fmt).decode()


def blocks(text: str) -> dict[str, list[str]]:
    """Exposition text -> {family name in its # TYPE/# HELP lines: its lines}."""
    out, cur = {}, None
    for line in text.split("\n"):
        if line.startswith("# ") and line != "# EOF":
            fam = line.split(" ")[2]
            if fam != cur:
                cur = fam
                assert fam not in out, f"family {fam} appears twice"
                out[fam] = []
        if line and line != "# EOF":
            out.setdefault(cur, []).append(line)
    return out


def _norm_metrics(rows):
    # summary quantiles are time-windowed (they can expire in a slow valgrind run): keep
    # count and sum only, and repr() so NaN compares equal to NaN
    out = []
    for r in rows:
        v = r["val"]
        if isinstance(v, dict) and "quantiles" in v:
            v = {"count": v["count"], "sum": v["sum"], "q": list(v["quantiles"])}
        out.append(repr((r["metric"], r["mtype"], r["labels"], r["id"], v)))
    return out


def state(ext):
    """Everything the store shows, as bytes (cheap: no decoding, it runs twice per bad
    input, under valgrind too): the meta table's -8! bytes (families, types, help,
    labels, params, limits, series counts), the id column of the metrics table (every
    series' id, in order), and the text exposition, which has every series' labels and
    value, less summary quantile lines (time-windowed: they expire in a slow run)."""
    with ext.call_k("qprom_meta", None) as m:
        meta = m.b9()
    with ext.call_k("qprom_metrics", None) as t:
        with child(ext.host, t, 3) as ids:
            assert ids.t == KJ
            idb = ctypes.string_at(ids.ptr + 16, 8 * ids.n)
    with ext.call_k("qprom_render", None) as r:
        text = ctypes.string_at(r.ptr + 16, r.n)
    text = b"\n".join(l for l in text.split(b"\n") if b'quantile="' not in l)
    return meta, idb, text


def current_default_limit(q, ext) -> int:
    """The registry's default series limit, read off a throwaway family."""
    name = f"tx_limit_probe_{next(_serial)}"
    create(q, ext, name, "gauge")
    try:
        return meta_row(ext, name)["limit"]
    finally:
        call(ext, "qprom_del", name, None)


# q IPC wire format (-8!), written out independently of libe (code.kx.com, "Serialization
# examples"): header 1 0 0 0 + total length; atoms: negative type + value; vectors: type,
# attribute 0, int32 count, items (symbols NUL-terminated); general list type 0; dict 99
# keys values; table 98 0 then its column dict.
def w_frame(body: bytes) -> bytes:
    return struct.pack("<bbbbI", 1, 0, 0, 0, 8 + len(body)) + body


def w_j(v): return struct.pack("<bq", -KJ, v)
def w_f(v): return struct.pack("<bd", -KF, v)
def w_s(s): return struct.pack("<b", -KS) + s.encode("utf-8", "surrogateescape") + b"\0"
def w_js(xs): return struct.pack(f"<bbi{len(xs)}q", KJ, 0, len(xs), *xs)
def w_fs(xs): return struct.pack(f"<bbi{len(xs)}d", KF, 0, len(xs), *xs)
def w_str(b): return struct.pack("<bbi", 10, 0, len(b)) + b
def w_syms(xs): return struct.pack("<bbi", KS, 0, len(xs)) + b"".join(x.encode("utf-8", "surrogateescape") + b"\0" for x in xs)
def w_list(items): return struct.pack("<bbi", 0, 0, len(items)) + b"".join(items)
def w_dict(k, v): return b"\x63" + k + v
def w_table(cols: dict): return b"\x62\x00" + w_dict(w_syms(list(cols)), w_list(list(cols.values())))


def child(q, k: K, *path) -> K:
    """A borrowed element inside a K result, as an owned wrapper (r1): path of column /
    item indices into tables (column i), dicts (0 keys, 1 values) and general lists."""
    p = k.ptr
    for i in path:
        t = ctypes.c_int8.from_address(p + 2).value
        if t == 98:                      # table: its dict's values, column i
            d = ctypes.c_void_p.from_address(p + 8).value
            vals = ctypes.c_void_p.from_address(d + 16 + 8).value
            p = ctypes.c_void_p.from_address(vals + 16 + 8 * i).value
        elif t in (0, 99):
            p = ctypes.c_void_p.from_address(p + 16 + 8 * i).value
        else:
            raise ValueError(f"no children in type {t}")
    return K(q, p, owned=False)


# ---------------------------------------------------------------- shared families --

class Fx:
    """Families the bad-input tests aim at (created once per process)."""


@pytest.fixture(scope="module")
def fx(q, qprom):
    ext, f = qprom, Fx()
    tag = f"tx_fx{next(_serial)}"
    f.c = create(q, ext, f"{tag}_c", "counter", help=b"two labels", labels=["a", "b"])
    call(ext, "qprom_inc", f.c, ["x", "y"], 5)
    f.c1 = create(q, ext, f"{tag}_c1", "counter", labels="a")
    call(ext, "qprom_inc", f.c1, "x", 3)
    f.g = create(q, ext, f"{tag}_g", "gauge", labels=["a"])
    call(ext, "qprom_set", f.g, "x", 2.5)
    f.h = create(q, ext, f"{tag}_h", "histogram", labels=["a"], buckets=[1.0, 2.0])
    call(ext, "qprom_obs", f.h, "x", 1.5)
    f.s = create(q, ext, f"{tag}_s", "summary", labels=["a"])
    call(ext, "qprom_obs", f.s, "x", 1.0)
    f.i = create(q, ext, f"{tag}_info", "info", labels=["v"])
    f.hi = call(ext, "qprom_series", f.i, "1", None, None)
    f.u = create(q, ext, f"{tag}_u", "counter")
    call(ext, "qprom_inc", f.u, None, 4)
    f.lim = create(q, ext, f"{tag}_lim", "counter", labels=["a"], limit=2)
    call(ext, "qprom_inc", f.lim, "x", 1)
    call(ext, "qprom_inc", f.lim, "y", 1)
    f.hc = call(ext, "qprom_series", f.c1, "x", None, None)
    f.hg = call(ext, "qprom_series", f.g, "x", None, None)
    f.hh = call(ext, "qprom_series", f.h, "x", None, None)
    f.dead = call(ext, "qprom_series", f.c1, "gone", None, None)
    call(ext, "qprom_del", f.c1, "gone")
    f.new = f"{tag}_new"               # never created: the name of failed creates
    f.nope = f"{tag}_nope"             # never created
    return f


# ======================================================================== good inputs

def test_every_export_is_there(ext):
    for name in EXPORTS:
        assert ext.fn(name), name


def test_create_returns_the_name_as_a_symbol(q, ext, nm):
    name = nm("c")
    d = defn(q, name=q.s(name), type=q.s("counter"), help=q.string(b"Requests served."),
             labels=q.syms(["method", "code"]))
    with ext.call_k("qprom_create", d) as r:
        assert r.t == -KS and r.py() == name
        assert r.b9() == w_frame(w_s(name))
    assert d.r == 0
    row = meta_row(ext, name)
    # the documented default limit: every test that changes it puts it back
    assert row == {"metric": name, "mtype": "counter", "help": b"Requests served.", "unit": "",
                   "labels": ["method", "code"], "params": [], "limit": DEFAULT_LIMIT,
                   "series": 0}
    # labelled: no series until the first update; the family is rendered with its header
    assert blocks(render(ext))[name] == [f"# HELP {name} Requests served.",
                                         f"# TYPE {name} counter"]


@pytest.mark.parametrize("form", ["general", "symvec", "strings", "charatom", "mtype"])
def test_create_accepts_every_definition_form(q, ext, nm, form):
    name = nm("g")
    if form == "general":
        d = defn(q, name=name, type="gauge", help=b"h", labels=["a"])
    elif form == "symvec":            # `name`type`help`labels!`n`gauge`h`a
        d = q.dict(q.syms(["name", "type", "help", "labels"]), q.syms([name, "gauge", "h", "a"]))
    elif form == "strings":           # every text as a char vector
        d = defn(q, name=q.string(name), type=q.string("gauge"), help=q.string("h"),
                 labels=q.knk(q.string("a")))
    elif form == "charatom":          # one-char strings are char atoms in q
        d = defn(q, name=q.string(name), type=q.string("gauge"), help=q.c(b"h"),
                 labels=q.knk(q.c(b"a")))
    else:                             # `mtype, as KX's exporter spells `type
        d = defn(q, name=name, mtype="gauge", help=b"h", labels=q.syms(["a"]))
    assert call(ext, "qprom_create", d) == name
    row = meta_row(ext, name)
    assert (row["mtype"], row["help"], row["labels"], row["series"]) == ("gauge", b"h", ["a"], 0)


@pytest.mark.parametrize("labels", ["none", "identity", "empty_general", "empty_syms"])
def test_unlabelled_metric_exists_from_the_start(q, ext, nm, labels):
    name = nm("u")
    extra = {"none": {}, "identity": {"labels": None}, "empty_general": {"labels": q.knk()},
             "empty_syms": {"labels": q.syms([])}}[labels]
    create(q, ext, name, "counter", **extra)
    assert meta_row(ext, name)["series"] == 1 and meta_row(ext, name)["labels"] == []
    for lb in (None, q.knk(), q.syms([]), q.dict(q.syms([]), q.knk()),
               q.dict(q.syms([]), q.syms([]))):
        assert get(q, ext, name, lb) == 0.0
    rows = metric_rows(ext, name)
    assert [(r["labels"], r["val"]) for r in rows] == [({}, 0.0)]


def test_create_again_with_same_type_and_labels_keeps_the_family(q, ext, nm):
    name = create(q, ext, nm("c"), "counter", help=b"first", labels=["a"])
    call(ext, "qprom_inc", name, "x", 2)
    before = meta_row(ext, name)
    assert call(ext, "qprom_create", defn(q, name=name, type="counter", help=b"second",
                                          labels=["a"])) == name
    assert meta_row(ext, name) == before
    assert get(q, ext, name, "x") == 2.0


def test_counter_inc_by_every_numeric_atom_type(q, ext, nm):
    name = create(q, ext, nm("c"), "counter", labels=["a"])
    incs = [q.j(1), q.i(2), q.h(3), q.e(0.5), q.f(0.25), q.j(0), q.f(0.0)]
    with no_leak(q):
        for v in incs:
            assert call(ext, "qprom_inc", q.s(name), q.s("x"), v) is None
    assert [v.r for v in incs] == [0] * len(incs)
    with ext.call_k("qprom_get", q.s(name), q.s("x")) as r:
        assert r.t == -KF and r.py() == 6.75
        assert r.b9() == w_frame(w_f(6.75))
    # by name as a string too
    call(ext, "qprom_inc", q.string(name), q.string("x"), q.j(10))
    assert get(q, ext, q.string(name), "x") == 16.75


def test_counter_integers_stay_exact(q, ext, nm):
    name = create(q, ext, nm("c"), "counter")
    call(ext, "qprom_set", name, None, q.j(2 ** 53 - 1))
    call(ext, "qprom_inc", name, None, q.j(1))
    call(ext, "qprom_inc", name, None, q.i(1))
    assert get(q, ext, name) == float(2 ** 53)         # the f64 view of 2^53+1
    assert f"{name} 9007199254740993" in render(ext).split("\n")   # exact in the exposition
    call(ext, "qprom_set", name, None, q.j(2 ** 60 + 1))  # a long sets it exactly
    call(ext, "qprom_inc", name, None, q.h(2))
    assert f"{name} 1152921504606846979" in render(ext).split("\n")
    call(ext, "qprom_set", name, None, q.j(WJ - 1))
    assert f"{name} {WJ - 1}" in render(ext).split("\n")
    assert err(ext, "qprom_set", name, None, q.inf("j")) == NOT_FINITE
    assert err(ext, "qprom_set", name, None, q.j(-1)) == NEGATIVE_COUNTER


def test_counter_never_wraps(q, ext, nm):
    """Issue 13, item 1: 2^63-2, then 1025 increments of 2^53-1 wrapped the integer cell
    at 2^64 and the text showed 9007199254739965. The counter must only go up."""
    name = create(q, ext, nm("w_total"), "counter")
    call(ext, "qprom_set", name, None, q.j(9223372036854775806))
    last = 9223372036854775806
    for i in range(1025):
        call(ext, "qprom_inc", name, None, q.j(9007199254740991))
        if i % 64 == 0 or i == 1024:
            line = [ln for ln in render(ext).split("\n") if ln.startswith(name + " ")][0]
            now = float(line.split(" ")[1])
            assert now >= last, f"went down: {last} -> {line}"
            last = now
    want = 9223372036854775806 + 1025 * 9007199254740991
    assert abs(last - want) / want < 1e-12
    assert abs(get(q, ext, name) - want) / want < 1e-12


def test_counter_total_stays_finite(q, ext, nm):
    """Issue 13, item 4: 0w is refused, so is a finite increment whose sum is infinite."""
    name = create(q, ext, nm("f_total"), "counter")
    call(ext, "qprom_inc", name, None, q.f(1.7976931348623157e308))
    before = state(ext)
    assert err(ext, "qprom_inc", name, None, q.f(1.7976931348623157e308)) == NOT_FINITE
    assert state(ext) == before
    assert get(q, ext, name) == 1.7976931348623157e308
    assert f"{name} 1.7976931348623157e308" in render(ext).split("\n")


def test_addmetric_start_long_stays_exact(q, ext, nm):
    """Issue 13, item 5: addmetric's start value rounded 2^60+1 to 2^60; setv kept it."""
    name = create(q, ext, nm("s_total"), "counter", labels=["a"])
    call(ext, "qprom_series", name, "x", None, q.j(2 ** 60 + 1))
    assert f'{name}{{a="x"}} 1152921504606846977' in render(ext).split("\n")


def test_counter_set_and_reset(q, ext, nm):
    name = create(q, ext, nm("c"), "counter", labels=["a"])
    call(ext, "qprom_set", name, "x", q.j(10))
    assert get(q, ext, name, "x") == 10.0
    call(ext, "qprom_set", name, "x", q.f(3.5))          # lower: a reset, allowed
    assert get(q, ext, name, "x") == 3.5
    call(ext, "qprom_set", name, "x", q.h(0))
    assert get(q, ext, name, "x") == 0.0


def test_gauge_set_inc_dec_with_every_numeric_type(q, ext, nm):
    name = create(q, ext, nm("g"), "gauge", labels=["a"])
    call(ext, "qprom_set", name, "x", q.f(-2.5))
    call(ext, "qprom_inc", name, "x", q.j(4))
    call(ext, "qprom_dec", name, "x", q.i(1))
    call(ext, "qprom_inc", name, "x", q.h(2))
    call(ext, "qprom_dec", name, "x", q.e(0.25))
    call(ext, "qprom_dec", name, "x", q.f(-0.5))
    assert get(q, ext, name, "x") == 2.75
    call(ext, "qprom_set", name, "x", q.e(1.5))
    assert get(q, ext, name, "x") == 1.5
    call(ext, "qprom_dec", name, "y", q.j(3))            # created at 0 by the update
    assert get(q, ext, name, "y") == -3.0


@pytest.mark.parametrize("t", ["h", "i", "j", "e", "f"])
@pytest.mark.parametrize("neg", [False, True], ids=["pos", "neg"])
def test_infinities_where_the_store_allows_them(q, ext, nm, t, neg):
    g = create(q, ext, nm("g"), "gauge")
    c = create(q, ext, nm("c"), "counter")
    h = create(q, ext, nm("h"), "histogram", buckets=[1.0])
    s = create(q, ext, nm("s"), "summary")
    inf = -INF if neg else INF
    call(ext, "qprom_set", g, None, q.inf(t, neg))
    assert get(q, ext, g) == inf
    call(ext, "qprom_set", g, None, q.j(1))
    call(ext, "qprom_inc", g, None, q.inf(t, neg))
    assert get(q, ext, g) == inf
    call(ext, "qprom_set", g, None, q.j(1))
    call(ext, "qprom_dec", g, None, q.inf(t, neg))
    assert get(q, ext, g) == -inf
    before = state(ext)
    # ±∞ alike: infinite before negative, as the error table says (issue 13, item 5)
    assert err(ext, "qprom_inc", c, None, q.inf(t, neg)) == NOT_FINITE
    assert err(ext, "qprom_set", c, None, q.inf(t, neg)) == NOT_FINITE
    for m in (h, s):
        assert err(ext, "qprom_obs", m, None, q.inf(t, neg)) == NOT_FINITE
        assert err(ext, "qprom_obs", m, None, q.vec(t, [1, q.inf(t, neg).py()])) == NOT_FINITE
    assert state(ext) == before
    assert get(q, ext, c) == 0.0


def test_gauge_opposite_infinities_give_nan_refused(q, ext, nm):
    g = create(q, ext, nm("g"), "gauge")
    call(ext, "qprom_set", g, None, q.inf("f"))
    before = state(ext)
    assert err(ext, "qprom_inc", g, None, q.inf("f", neg=True)) == NAN_VALUE
    assert err(ext, "qprom_dec", g, None, q.inf("j")) == NAN_VALUE
    assert state(ext) == before
    assert get(q, ext, g) == INF


def test_positional_and_dictionary_labels_address_one_series(q, ext, nm):
    name = create(q, ext, nm("c"), "counter", labels=["a", "b"])
    forms = [
        q.syms(["xv", "yv"]),                                    # `xv`yv
        q.knk(q.string("xv"), q.string("yv")),                   # ("xv";"yv")
        q.knk(q.s("xv"), q.string("yv")),                        # (`xv;"yv")
        q.dict(q.syms(["a", "b"]), q.syms(["xv", "yv"])),        # `a`b!`xv`yv
        q.dict(q.syms(["b", "a"]), q.syms(["yv", "xv"])),        # any key order
        q.dict(q.syms(["b", "a"]), q.knk(q.string("yv"), q.s("xv"))),
        q.dict(q.syms(["a", "b"]), q.knk(q.string("xv"), q.string("yv"))),
    ]
    with no_leak(q):
        for f in forms:
            call(ext, "qprom_inc", name, f, 1)
    for f in forms:
        assert get(q, ext, name, f) == float(len(forms))
    rows = metric_rows(ext, name)
    assert [(r["labels"], r["val"]) for r in rows] == [({"a": "xv", "b": "yv"}, 7.0)]


def test_single_label_forms(q, ext, nm):
    name = create(q, ext, nm("c"), "counter", labels="a")    # labels as one symbol
    assert meta_row(ext, name)["labels"] == ["a"]
    long_forms = [q.s("val"), q.string("val"), q.syms(["val"]), q.knk(q.string("val")),
                  q.knk(q.s("val")), q.dict(q.syms(["a"]), q.syms(["val"])),
                  q.dict(q.syms(["a"]), q.knk(q.string("val")))]
    for f in long_forms:
        call(ext, "qprom_inc", name, f, 1)
    one_char = [q.s("v"), q.c(b"v"), q.string("v"), q.syms(["v"]), q.knk(q.c(b"v"))]
    for f in one_char:
        call(ext, "qprom_inc", name, f, 1)
    got = {r["labels"]["a"]: r["val"] for r in metric_rows(ext, name)}
    assert got == {"val": 7.0, "v": 5.0}


def test_label_values_any_utf8_and_escaped_in_the_exposition(q, ext, nm):
    name = create(q, ext, nm("c"), "counter", labels=["a"])
    for v in ["", "é€😀", 'q"uote', "back\\slash", "new\nline", "a|b", " "]:
        call(ext, "qprom_inc", name, q.string(v), 1)
        assert get(q, ext, name, q.string(v)) == 1.0
        assert get(q, ext, name, q.s(v)) == 1.0
    lines = blocks(render(ext))[name]
    assert f'{name}{{a="q\\"uote"}} 1' in lines
    assert f'{name}{{a="back\\\\slash"}} 1' in lines
    assert f'{name}{{a="new\\nline"}} 1' in lines
    assert f'{name}{{a="é€😀"}} 1' in lines
    assert f'{name}{{a=""}} 1' in lines
    # ("ab";"c") and ("a";"bc") are different series
    n2 = create(q, ext, nm("c2"), "counter", labels=["a", "b"])
    call(ext, "qprom_inc", n2, ["ab", "c"], 1)
    call(ext, "qprom_inc", n2, ["a", "bc"], 2)
    assert get(q, ext, n2, ["ab", "c"]) == 1.0 and get(q, ext, n2, ["a", "bc"]) == 2.0


def test_many_labels(q, ext, nm):
    names = [f"l{i}" for i in range(12)]                    # > 8: LabelBuf's heap path
    name = create(q, ext, nm("c"), "counter", labels=names)
    vals = [f"v{i}" for i in range(12)]
    call(ext, "qprom_inc", name, q.syms(vals), 3)
    rev = q.dict(q.syms(names[::-1]), q.syms(vals[::-1]))
    assert get(q, ext, name, rev) == 3.0
    assert metric_rows(ext, name)[0]["labels"] == dict(zip(names, vals))


def test_series_handles(q, ext, nm):
    c = create(q, ext, nm("c"), "counter", labels=["a"])
    with ext.call_k("qprom_series", q.s(c), q.s("x"), None, None) as r:
        assert r.t == -KJ
        hid = r.py()
    assert call(ext, "qprom_series", c, q.string("x"), q.knk(), q.knk()) == hid   # same series
    assert [r["id"] for r in metric_rows(ext, c)] == [hid]
    call(ext, "qprom_inc", q.j(hid), None, 2)
    call(ext, "qprom_inc", q.j(hid), q.knk(), 3)            # () is no labels
    call(ext, "qprom_inc", q.j(hid), q.syms([]), 1)          # `symbol$() too
    call(ext, "qprom_inc", q.j(hid), q.vec("j", []), 1)
    call(ext, "qprom_set", q.j(hid), None, 10)
    call(ext, "qprom_inc", q.j(hid), None, q.e(0.5))
    assert get(q, ext, q.j(hid)) == 10.5
    assert get(q, ext, c, "x") == 10.5
    # handles refuse labels
    before = state(ext)
    for lb in (q.s("x"), q.syms(["x"]), q.string("x"), q.dict(q.syms(["a"]), q.syms(["x"])),
               q.knk(q.s("x")), q.c(b"x")):
        assert err(ext, "qprom_inc", q.j(hid), lb, 1) == HANDLE_WITH_LABELS
        assert err(ext, "qprom_get", q.j(hid), lb) == HANDLE_WITH_LABELS
    assert state(ext) == before
    # ids are longs (they do not fit in 32 bits): an int is not a target
    assert err(ext, "qprom_get", q.i(hid & 0x7FFFFFFF), None) == TARGET_TYPE
    # deleted: the handle stops working, and a new series gets another one
    call(ext, "qprom_del", c, "x")
    assert err(ext, "qprom_get", q.j(hid), None) == UNKNOWN_SERIES
    assert err(ext, "qprom_inc", q.j(hid), None, 1) == UNKNOWN_SERIES
    assert call(ext, "qprom_series", c, "x", None, None) != hid


def test_series_start_values_and_per_series_params(q, ext, nm):
    c = create(q, ext, nm("c"), "counter", labels=["a"])
    g = create(q, ext, nm("g"), "gauge", labels=["a"])
    h = create(q, ext, nm("h"), "histogram", labels=["a"], buckets=[1.0, 2.0])
    s = create(q, ext, nm("s"), "summary", labels=["a"])
    hc = call(ext, "qprom_series", c, "x", None, q.j(5))
    assert get(q, ext, q.j(hc)) == 5.0
    assert call(ext, "qprom_series", c, "x", None, q.j(99)) == hc       # existing: unchanged
    assert get(q, ext, c, "x") == 5.0
    call(ext, "qprom_series", c, "y", None, q.f(2.5))
    assert get(q, ext, c, "y") == 2.5
    call(ext, "qprom_series", g, "x", None, q.f(-2.5))
    assert get(q, ext, g, "x") == -2.5
    call(ext, "qprom_series", g, "inf", None, q.inf("j"))
    assert get(q, ext, g, "inf") == INF
    call(ext, "qprom_series", g, "list", None, q.knk(q.h(7)))          # one-item list
    assert get(q, ext, g, "list") == 7.0
    # histogram: per-series buckets and initial observations
    hh = call(ext, "qprom_series", h, "x", q.vec("j", [10, 20]), q.vec("f", [5.0, 15.0, 25.0]))
    row = [r for r in metric_rows(ext, h) if r["id"] == hh][0]
    assert row["val"] == {"count": 3, "sum": 45.0, "buckets": {10.0: 1, 20.0: 2, INF: 3}}
    hd = call(ext, "qprom_series", h, "d", None, None)                 # family buckets
    row = [r for r in metric_rows(ext, h) if r["id"] == hd][0]
    assert row["val"] == {"count": 0, "sum": 0.0, "buckets": {1.0: 0, 2.0: 0, INF: 0}}
    # summary: per-series quantiles
    hs = call(ext, "qprom_series", s, "x", q.vec("f", [0.25, 0.75]), q.vec("j", [1, 2, 3, 4]))
    row = [r for r in metric_rows(ext, s) if r["id"] == hs][0]
    assert (row["val"]["count"], row["val"]["sum"]) == (4, 10.0)
    assert list(row["val"]["quantiles"]) == [0.25, 0.75]
    assert get(q, ext, q.j(hs)) == 10.0


def test_histogram(q, ext, nm):
    name = create(q, ext, nm("h"), "histogram", help=b"latency", labels=["a"],
                  buckets=q.vec("f", [1.0, 2.0, 4.0]))
    assert meta_row(ext, name)["params"] == [1.0, 2.0, 4.0]
    with no_leak(q):
        call(ext, "qprom_obs", name, "x", q.vec("f", [0.5, 1.5, 3.0, 10.0]))
        call(ext, "qprom_obs", name, "x", q.vec("j", [1, 2, 5]))
        call(ext, "qprom_obs", name, "x", q.vec("h", [4]))
        call(ext, "qprom_obs", name, "x", q.vec("i", [-1]))
        call(ext, "qprom_obs", name, "x", q.vec("e", [0.25]))
        call(ext, "qprom_obs", name, "x", q.knk(q.j(2), q.f(0.5)))      # general list
        call(ext, "qprom_obs", name, "x", q.e(1.0))
        call(ext, "qprom_obs", name, "x", q.i(3))
        call(ext, "qprom_obs", name, "x", q.knk())                      # nothing
        call(ext, "qprom_obs", name, "x", q.vec("f", []))               # nothing
    obs = [0.5, 1.5, 3.0, 10.0, 1, 2, 5, 4, -1, 0.25, 2, 0.5, 1.0, 3]
    want = {"count": len(obs), "sum": sum(obs),
            "buckets": {1.0: sum(o <= 1 for o in obs), 2.0: sum(o <= 2 for o in obs),
                        4.0: sum(o <= 4 for o in obs), INF: len(obs)}}
    assert want["buckets"] == {1.0: 6, 2.0: 9, 4.0: 12, INF: 14}
    rows = metric_rows(ext, name)
    assert [(r["mtype"], r["labels"], r["val"]) for r in rows] == [("histogram", {"a": "x"}, want)]
    assert get(q, ext, name, "x") == sum(obs)
    lines = blocks(render(ext))[name]
    assert lines == [f"# HELP {name} latency", f"# TYPE {name} histogram",
                     f'{name}_bucket{{a="x",le="1"}} 6', f'{name}_bucket{{a="x",le="2"}} 9',
                     f'{name}_bucket{{a="x",le="4"}} 12', f'{name}_bucket{{a="x",le="+Inf"}} 14',
                     f'{name}_count{{a="x"}} 14', f'{name}_sum{{a="x"}} 32.75']


def test_histogram_default_and_trailing_inf_buckets(q, ext, nm):
    d = create(q, ext, nm("hd"), "histogram")
    assert meta_row(ext, d)["params"] == DEFAULT_BUCKETS
    i = create(q, ext, nm("hi"), "histogram", buckets=q.vec("f", [1.0, INF]))
    assert meta_row(ext, i)["params"] == [1.0]
    j = create(q, ext, nm("hj"), "histogram", buckets=q.vec("j", [1, 5]))
    assert meta_row(ext, j)["params"] == [1.0, 5.0]
    e = create(q, ext, nm("he"), "histogram", buckets=q.knk())
    assert meta_row(ext, e)["params"] == []
    call(ext, "qprom_obs", e, None, 3)
    assert metric_rows(ext, e)[0]["val"] == {"count": 1, "sum": 3.0, "buckets": {INF: 1}}


def test_histogram_row_b9_bytes(q, ext, nm):
    """One small deterministic result, byte for byte: the `value` of a histogram row."""
    name = create(q, ext, nm("h"), "histogram", buckets=[1.0, 2.0])
    call(ext, "qprom_obs", name, None, q.vec("f", [0.5, 1.5, 1.5, 7.0]))
    with ext.call_k("qprom_metrics", None) as t:
        row = t.py()["metric"].index(name)
        with child(q, t, 4, row) as v:
            assert v.t == 99
            want = w_frame(w_dict(
                w_syms(["count", "sum", "buckets"]),
                w_list([w_j(4), w_f(10.5),
                        w_dict(w_fs([1.0, 2.0, INF]), w_js([1, 3, 4]))])))
            assert v.b9() == want
            # the same structure made with the host's builders serializes identically
            same = q.dict(q.syms(["count", "sum", "buckets"]),
                          q.knk(q.j(4), q.f(10.5), q.dict(q.vec("f", [1.0, 2.0, INF]),
                                                          q.vec("j", [1, 3, 4]))))
            assert q.b9(same) == want
            assert q.d9(want).py() == v.py()
        with child(q, t, 2, row) as lb:       # labels: (`symbol$())!`symbol$()
            assert lb.b9() == w_frame(w_dict(w_syms([]), w_syms([])))


def _wire_metrics(m: Table) -> bytes:
    def value(t, v):
        if t == "histogram":
            return w_dict(w_syms(["count", "sum", "buckets"]),
                          w_list([w_j(v["count"]), w_f(v["sum"]),
                                  w_dict(w_fs(list(v["buckets"])), w_js(list(v["buckets"].values())))]))
        if t == "summary":
            return w_dict(w_syms(["count", "sum", "quantiles"]),
                          w_list([w_j(v["count"]), w_f(v["sum"]),
                                  w_dict(w_fs(list(v["quantiles"])), w_fs(list(v["quantiles"].values())))]))
        return w_f(v)
    return w_frame(w_table({
        "metric": w_syms(m["metric"]), "mtype": w_syms(m["mtype"]),
        "labels": w_list([w_dict(w_syms(list(d)), w_syms(list(d.values()))) for d in m["labels"]]),
        "id": w_js(m["id"]),
        "val": w_list([value(t, v) for t, v in zip(m["mtype"], m["val"])]),
    }))


def _wire_meta(m: Table) -> bytes:
    return w_frame(w_table({
        "metric": w_syms(m["metric"]), "mtype": w_syms(m["mtype"]),
        "help": w_list([w_str(h) for h in m["help"]]), "unit": w_syms(m["unit"]),
        "labels": w_list([w_syms(l) for l in m["labels"]]),
        "params": w_list([w_fs(p) for p in m["params"]]),
        "limit": w_js(m["limit"]), "series": w_js(m["series"]),
    }))


def test_metrics_and_meta_tables_have_q_types_byte_for_byte(q, ext, nm, fx):
    """The whole tables, re-encoded from their decoded values with the column types the
    exports document: symbol columns are symbol vectors, ids and counts long vectors,
    labels dicts of symbols, values float atoms or count/sum dicts, help strings."""
    create(q, ext, nm("s"), "summary", quantiles=[0.5])
    with ext.call_k("qprom_metrics", None) as t:
        assert t.t == 98
        m = t.py()
        assert list(m) == ["metric", "mtype", "labels", "id", "val"]
        assert t.b9() == _wire_metrics(m)
    with ext.call_k("qprom_meta", None) as t:
        assert t.t == 98
        m = t.py()
        assert list(m) == ["metric", "mtype", "help", "unit", "labels", "params", "limit", "series"]
        assert t.b9() == _wire_meta(m)
        assert m["metric"] == sorted(m["metric"])          # families come sorted by name


def test_summary_quantiles_within_one_percent(q, ext, nm):
    name = create(q, ext, nm("s"), "summary", help=b"sizes", labels=["a"],
                  quantiles=q.vec("f", [0.5, 0.9, 0.99]), maxAge=q.n(60 * 10 ** 9),
                  ageBuckets=q.j(3))
    assert meta_row(ext, name)["params"] == [0.5, 0.9, 0.99]
    vals = list(range(1, 1001))
    random.Random(7).shuffle(vals)
    for i in range(0, 1000, 100):
        call(ext, "qprom_obs", name, "x", q.vec("j", vals[i:i + 100]))
    call(ext, "qprom_obs", name, "y", q.f(2.5))
    rows = {r["labels"]["a"]: r["val"] for r in metric_rows(ext, name)}
    v = rows["x"]
    assert (v["count"], v["sum"]) == (1000, 500500.0)
    exact = {0.5: 500, 0.9: 900, 0.99: 990}      # v[floor(q*(n-1))] of 1..1000
    assert list(v["quantiles"]) == [0.5, 0.9, 0.99]
    for qq, est in v["quantiles"].items():
        assert abs(est - exact[qq]) <= 0.01 * exact[qq], (qq, est)
    assert rows["y"]["count"] == 1 and all(abs(e - 2.5) <= 0.025 for e in rows["y"]["quantiles"].values())
    assert get(q, ext, name, "x") == 500500.0
    lines = blocks(render(ext))[name]
    assert lines[:2] == [f"# HELP {name} sizes", f"# TYPE {name} summary"]
    assert f'{name}_count{{a="x"}} 1000' in lines and f'{name}_sum{{a="x"}} 500500' in lines
    qlines = [l for l in lines if l.startswith(f'{name}{{a="x",quantile="')]
    assert [l.split('quantile="')[1].split('"')[0] for l in qlines] == ["0.5", "0.9", "0.99"]
    for l, qq in zip(qlines, [0.5, 0.9, 0.99]):
        assert abs(float(l.rsplit(" ", 1)[1]) - exact[qq]) <= 0.01 * exact[qq]


def test_summary_window_options(q, ext, nm):
    a = create(q, ext, nm("a"), "summary", maxAge=q.f(30.0))
    b = create(q, ext, nm("b"), "summary", maxAge=q.j(30), ageBuckets=q.h(1))
    c = create(q, ext, nm("c"), "summary", ageBuckets=q.i(1024))
    for n in (a, b, c):
        assert meta_row(ext, n)["params"] == [0.5, 0.9, 0.99]
        call(ext, "qprom_obs", n, None, 1.0)
        assert metric_rows(ext, n)[0]["val"]["count"] == 1


def test_info_metric(q, ext, nm):
    base = nm("build")
    name = create(q, ext, base + "_info", "info", help=b"build info", labels=["version", "rev"])
    hid = call(ext, "qprom_series", name, ["1.2.3", "abc"], None, None)
    assert get(q, ext, q.j(hid)) == 1.0
    assert get(q, ext, name, ["1.2.3", "abc"]) == 1.0
    assert [(r["mtype"], r["labels"], r["val"]) for r in metric_rows(ext, name)] == \
        [("info", {"version": "1.2.3", "rev": "abc"}, 1.0)]
    assert blocks(render(ext))[name] == [f"# HELP {name} build info", f"# TYPE {name} gauge",
                                         f'{name}{{version="1.2.3",rev="abc"}} 1']
    assert blocks(render(ext, "openmetrics"))[base] == [
        f"# TYPE {base} info", f"# HELP {base} build info",
        f'{name}{{version="1.2.3",rev="abc"}} 1']
    # a start value (KX scripts pass 1f) is accepted and ignored: info is always 1
    for start in (q.f(1.0), q.j(5), q.vec("f", [2.0, 3.0])):
        h2 = call(ext, "qprom_series", name, ["2.0", "def"], None, start)
        assert get(q, ext, q.j(h2)) == 1.0
    assert call(ext, "qprom_series", name, ["2.0", "def"], None, None) == h2
    call(ext, "qprom_del", name, ["2.0", "def"])
    assert err(ext, "qprom_series", name, ["3.0", "x"], q.vec("f", [1.0]), None) == INVALID_PARAMS
    assert err(ext, "qprom_series", name, ["3.0", "x"], None, q.inf("f")) == NOT_FINITE
    assert err(ext, "qprom_series", name, ["3.0", "x"], None, q.null("j")) == NULL_VALUE
    before = state(ext)
    for op in ("qprom_inc", "qprom_dec", "qprom_set", "qprom_obs"):
        assert err(ext, op, q.j(hid), None, 1) == WRONG_TYPE
        assert err(ext, op, name, ["1.2.3", "abc"], 1) == WRONG_TYPE
    assert state(ext) == before


def test_render_text_and_openmetrics(q, ext, nm):
    base = nm("req")
    c = create(q, ext, base + "_total", "counter", help=b"Requests.\nSecond \\ line", labels=["code"])
    g = create(q, ext, nm("temp_celsius"), "gauge", unit="celsius")
    call(ext, "qprom_inc", c, "200", 3)
    call(ext, "qprom_set", g, None, q.f(21.5))
    for fmt in (None, "text", q.string("text"), q.s(""), q.string("")):
        with ext.call_k("qprom_render", fmt) as r:
            assert r.t == 10
            text = bytes(r.py()).decode()
        b = blocks(text)
        assert b[c] == [f"# HELP {c} Requests.\\nSecond \\\\ line", f"# TYPE {c} counter",
                        f'{c}{{code="200"}} 3']
        assert b[g] == [f"# TYPE {g} gauge", f"{g} 21.5"]
        assert not text.endswith("# EOF\n")
    for fmt in ("openmetrics", q.string("openmetrics")):
        om = render(ext, fmt)
        assert om.endswith("# EOF\n") and om.count("# EOF") == 1
        b = blocks(om)
        lines = b[base]
        assert lines[:2] == [f"# TYPE {base} counter", f"# HELP {base} Requests.\\nSecond \\\\ line"]
        assert lines[2] == f'{base}_total{{code="200"}} 3'
        assert re.fullmatch(re.escape(f'{base}_created{{code="200"}} ') + r"\d+(\.\d+)?", lines[3])
        assert b[g] == [f"# TYPE {g} gauge", f"# UNIT {g} celsius", f"{g} 21.5"]


def test_meta_table(q, ext, nm):
    g = create(q, ext, nm("q_bytes"), "gauge", help=b"queue size", unit="bytes",
               labels=["host", "port"], limit=7)
    h = create(q, ext, nm("h"), "histogram", buckets=[0.5])
    s = create(q, ext, nm("s"), "summary", quantiles=[0.1, 0.2])
    i = create(q, ext, nm("x_info"), "info")
    assert meta_row(ext, g) == {"metric": g, "mtype": "gauge", "help": b"queue size", "unit": "bytes",
                                "labels": ["host", "port"], "params": [], "limit": 7, "series": 0}
    call(ext, "qprom_set", g, ["a", "1"], 1)
    call(ext, "qprom_set", g, ["b", "1"], 1)
    assert meta_row(ext, g)["series"] == 2
    assert meta_row(ext, h)["params"] == [0.5] and meta_row(ext, h)["series"] == 1
    assert meta_row(ext, s)["params"] == [0.1, 0.2]
    assert (meta_row(ext, i)["mtype"], meta_row(ext, i)["series"]) == ("info", 1)


@pytest.mark.parametrize("arg", ["identity", "long", "sym", "table", "lambda", "empty"])
def test_metrics_and_meta_ignore_their_argument(q, ext, arg):
    a = {"identity": lambda: None, "long": lambda: q.j(1), "sym": lambda: q.s("x"),
         "table": lambda: q.table({"a": q.vec("j", [1])}), "lambda": lambda: q.lambda_("f"),
         "empty": lambda: q.knk()}[arg]
    m1, m2 = call(ext, "qprom_meta", a()), call(ext, "qprom_meta", None)
    assert m1 == m2
    r1, r2 = call(ext, "qprom_metrics", a()), call(ext, "qprom_metrics", None)
    assert _norm_metrics(r1.rows()) == _norm_metrics(r2.rows())


def test_limit_sets_the_default_for_new_families(q, ext, nm):
    old = current_default_limit(q, ext)
    try:
        assert call(ext, "qprom_limit", q.j(3)) is None
        assert current_default_limit(q, ext) == 3
        before = create(q, ext, nm("old"), "counter", labels=["a"], limit=5)
        new = create(q, ext, nm("new"), "counter", labels=["a"])
        assert meta_row(ext, new)["limit"] == 3 and meta_row(ext, before)["limit"] == 5
        for v in "xyz":
            call(ext, "qprom_inc", new, v, 1)
        snap = state(ext)
        assert err(ext, "qprom_inc", new, "w", 1) == SERIES_LIMIT
        assert err(ext, "qprom_series", new, "w", None, None) == SERIES_LIMIT
        assert state(ext) == snap
        call(ext, "qprom_inc", new, "x", 1)                  # existing series still update
        call(ext, "qprom_limit", q.i(4))
        assert current_default_limit(q, ext) == 4
        assert meta_row(ext, new)["limit"] == 3               # existing families keep theirs
        call(ext, "qprom_limit", q.h(5))
        assert current_default_limit(q, ext) == 5
        for bad, msg in [(q.j(0), INVALID_SERIES_LIMIT), (q.j(-1), INVALID_SERIES_LIMIT),
                         (q.i(-7), INVALID_SERIES_LIMIT), (q.null("j"), WHOLE_NUMBER),
                         (q.null("i"), WHOLE_NUMBER), (q.null("h"), WHOLE_NUMBER),
                         (q.inf("j"), WHOLE_NUMBER), (q.inf("j", True), WHOLE_NUMBER),
                         (q.f(5.0), WHOLE_NUMBER), (q.e(5.0), WHOLE_NUMBER), (q.s("x"), WHOLE_NUMBER),
                         (None, WHOLE_NUMBER), (q.vec("j", [5]), WHOLE_NUMBER)]:
            assert err(ext, "qprom_limit", bad) == msg
            assert current_default_limit(q, ext) == 5
    finally:
        call(ext, "qprom_limit", q.j(old))
    assert current_default_limit(q, ext) == old


def test_del_series_and_family(q, ext, nm):
    c = create(q, ext, nm("c"), "counter", labels=["a"])
    call(ext, "qprom_inc", c, "x", 1)
    call(ext, "qprom_inc", c, "y", 2)
    assert call(ext, "qprom_del", c, q.dict(q.syms(["a"]), q.syms(["x"]))) is None
    assert [r["labels"] for r in metric_rows(ext, c)] == [{"a": "y"}]
    assert err(ext, "qprom_get", c, "x") == UNKNOWN_SERIES
    assert err(ext, "qprom_del", c, "x") == UNKNOWN_SERIES
    assert call(ext, "qprom_del", q.string(c), None) is None
    assert meta_row(ext, c) is None and metric_rows(ext, c) == []
    assert err(ext, "qprom_get", c, "y") == UNKNOWN_METRIC
    assert err(ext, "qprom_del", c, None) == UNKNOWN_METRIC
    # the name (and the names it claimed) are free again, for another type
    create(q, ext, c, "gauge")
    create(q, ext, c + "_total", "gauge")
    # unlabelled: () removes the one series, (::) the family
    u = create(q, ext, nm("u"), "gauge")
    call(ext, "qprom_del", u, q.knk())
    assert meta_row(ext, u)["series"] == 0
    call(ext, "qprom_set", u, None, 1)
    assert meta_row(ext, u)["series"] == 1


# ======================================================================== bad inputs
# (id, builder(q, fx) -> (export, args), exact message). Every case: the message, and
# the registry unchanged.

def _d(q, **kv):
    return defn(q, **kv)


BAD = [
    # unknown metric / series
    ("inc-unknown-metric", lambda q, f: ("qprom_inc", [f.nope, "x", 1]), UNKNOWN_METRIC),
    ("dec-unknown-metric", lambda q, f: ("qprom_dec", [q.string(f.nope), "x", 1]), UNKNOWN_METRIC),
    ("set-unknown-metric", lambda q, f: ("qprom_set", [f.nope, None, 1]), UNKNOWN_METRIC),
    ("obs-unknown-metric", lambda q, f: ("qprom_obs", [f.nope, "x", 1.0]), UNKNOWN_METRIC),
    ("obs-vec-unknown-metric", lambda q, f: ("qprom_obs", [f.nope, "x", q.vec("f", [1.0])]), UNKNOWN_METRIC),
    ("get-unknown-metric", lambda q, f: ("qprom_get", [f.nope, None]), UNKNOWN_METRIC),
    ("del-unknown-metric", lambda q, f: ("qprom_del", [f.nope, None]), UNKNOWN_METRIC),
    ("del-series-unknown-metric", lambda q, f: ("qprom_del", [f.nope, "x"]), UNKNOWN_METRIC),
    ("series-unknown-metric", lambda q, f: ("qprom_series", [f.nope, "x", None, None]), UNKNOWN_METRIC),
    ("inc-empty-name", lambda q, f: ("qprom_inc", [q.s(""), None, 1]), UNKNOWN_METRIC),
    ("get-unknown-series", lambda q, f: ("qprom_get", [f.c1, "zz"]), UNKNOWN_SERIES),
    ("del-unknown-series", lambda q, f: ("qprom_del", [f.c1, "zz"]), UNKNOWN_SERIES),
    ("inc-dead-handle", lambda q, f: ("qprom_inc", [q.j(f.dead), None, 1]), UNKNOWN_SERIES),
    ("get-dead-handle", lambda q, f: ("qprom_get", [q.j(f.dead), None]), UNKNOWN_SERIES),
    ("get-handle-0", lambda q, f: ("qprom_get", [q.j(0), None]), UNKNOWN_SERIES),
    ("get-handle-neg", lambda q, f: ("qprom_get", [q.j(-1), None]), UNKNOWN_SERIES),
    ("set-handle-big", lambda q, f: ("qprom_set", [q.j(WJ - 1), None, 1]), UNKNOWN_SERIES),
    ("obs-handle-int", lambda q, f: ("qprom_obs", [q.i(5), None, 1.0]), TARGET_TYPE),
    ("get-handle-null", lambda q, f: ("qprom_get", [q.null("j"), None]), TARGET_TYPE),
    ("get-handle-inf", lambda q, f: ("qprom_get", [q.inf("j"), None]), TARGET_TYPE),
    ("get-handle-short", lambda q, f: ("qprom_get", [q.h(1), None]), TARGET_TYPE),
    # label count
    ("inc-count-1-for-2", lambda q, f: ("qprom_inc", [f.c, "x", 1]), LABEL_COUNT),
    ("inc-count-3-for-2", lambda q, f: ("qprom_inc", [f.c, ["x", "y", "z"], 1]), LABEL_COUNT),
    ("inc-count-none-for-2", lambda q, f: ("qprom_inc", [f.c, None, 1]), LABEL_COUNT),
    ("inc-count-empty-for-2", lambda q, f: ("qprom_inc", [f.c, q.knk(), 1]), LABEL_COUNT),
    ("inc-count-1-for-0", lambda q, f: ("qprom_inc", [f.u, "x", 1]), LABEL_COUNT),
    ("inc-count-emptystr-for-0", lambda q, f: ("qprom_inc", [f.u, q.string(""), 1]), LABEL_COUNT),
    ("get-count-strings", lambda q, f: ("qprom_get", [f.c1, q.knk(q.string("x"), q.string("y"))]), LABEL_COUNT),
    ("set-count", lambda q, f: ("qprom_set", [f.g, ["x", "y"], 1]), LABEL_COUNT),
    ("obs-count", lambda q, f: ("qprom_obs", [f.h, None, 1.0]), LABEL_COUNT),
    ("del-count", lambda q, f: ("qprom_del", [f.c, "x"]), LABEL_COUNT),
    ("del-count-empty", lambda q, f: ("qprom_del", [f.c, q.knk()]), LABEL_COUNT),
    ("series-count", lambda q, f: ("qprom_series", [f.c, "x", None, None]), LABEL_COUNT),
    # dictionaries with the wrong label names
    ("inc-dict-wrong-name", lambda q, f: ("qprom_inc", [f.c, q.dict(q.syms(["a", "z"]), q.syms(["x", "y"])), 1]), LABEL_NAMES),
    ("inc-dict-too-few", lambda q, f: ("qprom_inc", [f.c, q.dict(q.syms(["a"]), q.syms(["x"])), 1]), LABEL_NAMES),
    ("inc-dict-too-many", lambda q, f: ("qprom_inc", [f.c1, q.dict(q.syms(["a", "b"]), q.syms(["x", "y"])), 1]), LABEL_NAMES),
    # ()!() names no labels: the wrong names for a labelled metric (issue 13, item 5)
    ("inc-emptydict-for-2", lambda q, f: ("qprom_inc", [f.c, q.dict(q.knk(), q.knk()), 1]), LABEL_NAMES),
    ("inc-dict-dup-key", lambda q, f: ("qprom_inc", [f.c, q.dict(q.syms(["a", "a"]), q.syms(["x", "y"])), 1]), LABEL_NAMES),
    ("get-dict-wrong-name", lambda q, f: ("qprom_get", [f.c1, q.dict(q.syms(["b"]), q.syms(["x"]))]), LABEL_NAMES),
    ("get-dict-empty-for-1", lambda q, f: ("qprom_get", [f.c1, q.dict(q.syms([]), q.syms([]))]), LABEL_NAMES),
    ("del-dict-wrong-name", lambda q, f: ("qprom_del", [f.c1, q.dict(q.syms(["b"]), q.syms(["x"]))]), LABEL_NAMES),
    ("series-dict-wrong-name", lambda q, f: ("qprom_series", [f.c1, q.dict(q.syms(["b"]), q.syms(["x"])), None, None]), LABEL_NAMES),
    # labels of the wrong shape
    ("inc-labels-long-in-list", lambda q, f: ("qprom_inc", [f.c, q.knk(q.s("x"), q.j(1)), 1]), LABELS_TYPE),
    ("inc-labels-nested", lambda q, f: ("qprom_inc", [f.c, q.knk(q.knk(q.s("x")), q.s("y")), 1]), LABELS_TYPE),
    ("inc-labels-symvec-in-list", lambda q, f: ("qprom_inc", [f.c, q.knk(q.syms(["x"]), q.s("y")), 1]), LABELS_TYPE),
    ("inc-labels-dict-long-values", lambda q, f: ("qprom_inc", [f.c, q.dict(q.syms(["a", "b"]), q.vec("j", [1, 2])), 1]), LABELS_TYPE),
    ("inc-labels-dict-long-keys", lambda q, f: ("qprom_inc", [f.c, q.dict(q.vec("j", [1, 2]), q.syms(["x", "y"])), 1]), LABELS_TYPE),
    ("inc-labels-dict-string-keys", lambda q, f: ("qprom_inc", [f.c1, q.dict(q.knk(q.string("a")), q.syms(["x"])), 1]), LABELS_TYPE),
    ("inc-labels-dict-list-value", lambda q, f: ("qprom_inc", [f.c1, q.dict(q.syms(["a"]), q.knk(q.j(1))), 1]), LABELS_TYPE),
    ("inc-labels-table", lambda q, f: ("qprom_inc", [f.c1, q.table({"a": q.syms(["x"])}), 1]), LABELS_TYPE),
    ("inc-labels-keyed-table", lambda q, f: ("qprom_inc", [f.c1, q.keyed_table({"a": q.syms(["x"])}, {"b": q.syms(["y"])}), 1]), LABELS_TYPE),
    ("inc-labels-long", lambda q, f: ("qprom_inc", [f.c1, q.j(1), 1]), LABELS_TYPE),
    ("del-labels-long", lambda q, f: ("qprom_del", [f.c1, q.j(1)]), LABELS_TYPE),
    ("series-labels-long", lambda q, f: ("qprom_series", [f.c1, q.j(1), None, None]), LABELS_TYPE),
    # series ids take no labels
    ("inc-handle-sym", lambda q, f: ("qprom_inc", [q.j(f.hc), "x", 1]), HANDLE_WITH_LABELS),
    ("inc-handle-dict", lambda q, f: ("qprom_inc", [q.j(f.hc), q.dict(q.syms(["a"]), q.syms(["x"])), 1]), HANDLE_WITH_LABELS),
    ("set-handle-string", lambda q, f: ("qprom_set", [q.j(f.hg), q.string("x"), 1]), HANDLE_WITH_LABELS),
    ("obs-handle-list", lambda q, f: ("qprom_obs", [q.j(f.hh), q.knk(q.s("x")), 1.0]), HANDLE_WITH_LABELS),
    ("get-handle-emptydict", lambda q, f: ("qprom_get", [q.j(f.hc), q.dict(q.syms([]), q.syms([]))]), HANDLE_WITH_LABELS),
    ("get-handle-long", lambda q, f: ("qprom_get", [q.j(f.hc), q.j(0)]), HANDLE_WITH_LABELS),
    # operation and metric type (existing series)
    ("dec-counter", lambda q, f: ("qprom_dec", [f.c1, "x", 1]), COUNTER_DECREASE),
    ("dec-counter-zero", lambda q, f: ("qprom_dec", [f.c1, "x", 0]), COUNTER_DECREASE),
    ("dec-counter-negative", lambda q, f: ("qprom_dec", [f.c1, "x", -1]), COUNTER_DECREASE),
    ("dec-counter-handle", lambda q, f: ("qprom_dec", [q.j(f.hc), None, 1]), COUNTER_DECREASE),
    ("obs-counter", lambda q, f: ("qprom_obs", [f.c1, "x", 1.0]), WRONG_TYPE),
    ("obs-vec-counter", lambda q, f: ("qprom_obs", [f.c1, "x", q.vec("f", [1.0, 2.0])]), WRONG_TYPE),
    ("obs-gauge-handle", lambda q, f: ("qprom_obs", [q.j(f.hg), None, 1.0]), WRONG_TYPE),
    ("obs-info", lambda q, f: ("qprom_obs", [f.i, "1", 1.0]), WRONG_TYPE),
    ("inc-histogram", lambda q, f: ("qprom_inc", [f.h, "x", 1]), WRONG_TYPE),
    ("dec-histogram", lambda q, f: ("qprom_dec", [q.j(f.hh), None, 1]), WRONG_TYPE),
    ("set-histogram", lambda q, f: ("qprom_set", [f.h, "x", 1]), WRONG_TYPE),
    ("inc-summary", lambda q, f: ("qprom_inc", [f.s, "x", 1]), WRONG_TYPE),
    ("set-summary", lambda q, f: ("qprom_set", [f.s, "x", 1.0]), WRONG_TYPE),
    ("inc-info-handle", lambda q, f: ("qprom_inc", [q.j(f.hi), None, 1]), WRONG_TYPE),
    # values
    ("inc-counter-negative", lambda q, f: ("qprom_inc", [f.c1, "x", -1]), NEGATIVE_INCREMENT),
    ("inc-counter-negative-real", lambda q, f: ("qprom_inc", [f.c1, "x", q.e(-0.5)]), NEGATIVE_INCREMENT),
    ("inc-counter-negative-handle", lambda q, f: ("qprom_inc", [q.j(f.hc), None, q.h(-1)]), NEGATIVE_INCREMENT),
    ("set-counter-negative", lambda q, f: ("qprom_set", [f.c1, "x", q.f(-1.0)]), NEGATIVE_COUNTER),
    ("set-unlabelled-negative", lambda q, f: ("qprom_set", [f.u, None, q.i(-3)]), NEGATIVE_COUNTER),
    ("inc-counter-inf", lambda q, f: ("qprom_inc", [f.c1, "x", q.inf("f")]), NOT_FINITE),
    # -0w is infinite before it is negative: the same message as 0w (issue 13, item 5)
    ("inc-counter-neg-inf", lambda q, f: ("qprom_inc", [f.c1, "x", q.f(-INF)]), NOT_FINITE),
    ("inc-counter-neg-longinf", lambda q, f: ("qprom_inc", [f.c1, "x", q.j(-WJ)]), NOT_FINITE),
    ("set-counter-inf", lambda q, f: ("qprom_set", [f.c1, "x", q.inf("j")]), NOT_FINITE),
    ("obs-hist-inf", lambda q, f: ("qprom_obs", [f.h, "x", q.inf("f")]), NOT_FINITE),
    ("obs-hist-neg-inf", lambda q, f: ("qprom_obs", [f.h, "x", q.inf("e", True)]), NOT_FINITE),
    ("obs-hist-vec-inf", lambda q, f: ("qprom_obs", [f.h, "x", q.vec("f", [1.0, INF])]), NOT_FINITE),
    ("obs-hist-vec-longinf", lambda q, f: ("qprom_obs", [f.h, "x", q.vec("j", [1, WJ])]), NOT_FINITE),
    ("obs-hist-list-inf", lambda q, f: ("qprom_obs", [f.h, "x", q.knk(q.j(1), q.inf("i"))]), NOT_FINITE),
    ("obs-sum-inf", lambda q, f: ("qprom_obs", [f.s, "x", q.inf("h")]), NOT_FINITE),
    ("obs-sum-vec-inf", lambda q, f: ("qprom_obs", [f.s, "x", q.vec("e", [1.0, -INF])]), NOT_FINITE),
    ("obs-hist-vec-null-f", lambda q, f: ("qprom_obs", [f.h, "x", q.vec("f", [1.0, None])]), NULL_VALUE),
    ("obs-hist-vec-null-j", lambda q, f: ("qprom_obs", [f.h, "x", q.vec("j", [1, None, 2])]), NULL_VALUE),
    ("obs-hist-vec-null-i", lambda q, f: ("qprom_obs", [f.h, "x", q.vec("i", [None])]), NULL_VALUE),
    ("obs-hist-vec-null-h", lambda q, f: ("qprom_obs", [f.h, "x", q.vec("h", [3, None])]), NULL_VALUE),
    ("obs-hist-vec-null-e", lambda q, f: ("qprom_obs", [f.h, "x", q.vec("e", [None, 1.0])]), NULL_VALUE),
    ("obs-hist-list-null", lambda q, f: ("qprom_obs", [f.h, "x", q.knk(q.f(1.0), q.null("f"))]), NULL_VALUE),
    ("obs-sum-vec-null", lambda q, f: ("qprom_obs", [f.s, "x", q.vec("f", [2.0, None])]), NULL_VALUE),
    ("obs-list-with-symbol", lambda q, f: ("qprom_obs", [f.h, "x", q.knk(q.f(1.0), q.s("a"))]), VALUE_TYPE),
    ("obs-list-nested", lambda q, f: ("qprom_obs", [f.h, "x", q.knk(q.f(1.0), q.vec("f", [1.0]))]), VALUE_TYPE),
    ("obs-list-of-string", lambda q, f: ("qprom_obs", [f.h, "x", q.knk(q.string("1"))]), VALUE_TYPE),
    ("inc-nan-payload", lambda q, f: ("qprom_inc", [f.c1, "x", q.f(float("nan"))]), NULL_VALUE),
    ("set-gauge-nan-payload", lambda q, f: ("qprom_set", [f.g, "x", q.f(-float("nan"))]), NULL_VALUE),
    ("inc-vector", lambda q, f: ("qprom_inc", [f.c1, "x", q.vec("j", [1])]), VALUE_TYPE),
    ("set-identity", lambda q, f: ("qprom_set", [f.g, "x", None]), VALUE_TYPE),
    # series[...]
    ("series-params-on-counter", lambda q, f: ("qprom_series", [f.c1, "new", q.vec("f", [1.0]), None]), INVALID_PARAMS),
    ("series-params-on-gauge", lambda q, f: ("qprom_series", [f.g, "new", q.f(1.0), None]), INVALID_PARAMS),
    ("series-params-on-info", lambda q, f: ("qprom_series", [f.i, "new", q.j(1), None]), INVALID_PARAMS),
    ("series-two-starts-counter", lambda q, f: ("qprom_series", [f.c1, "new", None, q.vec("j", [1, 2])]), VALUE_TYPE),
    ("series-two-starts-gauge", lambda q, f: ("qprom_series", [f.g, "new", None, q.knk(q.j(1), q.j(2))]), VALUE_TYPE),
    ("series-negative-counter", lambda q, f: ("qprom_series", [f.c1, "new", None, q.j(-1)]), NEGATIVE_COUNTER),
    ("series-inf-counter", lambda q, f: ("qprom_series", [f.c1, "new", None, q.inf("f")]), NOT_FINITE),
    ("series-null-start", lambda q, f: ("qprom_series", [f.g, "new", None, q.null("f")]), NULL_VALUE),
    ("series-null-in-params", lambda q, f: ("qprom_series", [f.h, "new", q.vec("f", [1.0, None]), None]), NULL_VALUE),
    ("series-unsorted-buckets", lambda q, f: ("qprom_series", [f.h, "new", q.vec("f", [2.0, 1.0]), None]), INVALID_BUCKETS),
    ("series-dup-buckets", lambda q, f: ("qprom_series", [f.h, "new", q.vec("j", [1, 1]), None]), INVALID_BUCKETS),
    ("series-neg-inf-bucket", lambda q, f: ("qprom_series", [f.h, "new", q.vec("f", [-INF, 1.0]), None]), INVALID_BUCKETS),
    ("series-hist-inf-start", lambda q, f: ("qprom_series", [f.h, "new", None, q.vec("f", [1.0, INF])]), NOT_FINITE),
    ("series-quantile-over-1", lambda q, f: ("qprom_series", [f.s, "new", q.vec("f", [0.5, 1.5]), None]), INVALID_QUANTILES),
    ("series-quantiles-unsorted", lambda q, f: ("qprom_series", [f.s, "new", q.vec("f", [0.9, 0.5]), None]), INVALID_QUANTILES),
    ("series-quantile-negative", lambda q, f: ("qprom_series", [f.s, "new", q.f(-0.1), None]), INVALID_QUANTILES),
    ("series-sum-inf-start", lambda q, f: ("qprom_series", [f.s, "new", None, q.inf("j")]), NOT_FINITE),
    ("series-params-symbol", lambda q, f: ("qprom_series", [f.h, "new", q.s("a"), None]), PARAMS_TYPE),
    ("series-params-list-symbol", lambda q, f: ("qprom_series", [f.h, "new", q.knk(q.f(1.0), q.s("a")), None]), PARAMS_TYPE),
    ("series-start-symbol", lambda q, f: ("qprom_series", [f.g, "new", None, q.s("a")]), VALUE_TYPE),
    ("series-name-long", lambda q, f: ("qprom_series", [q.j(1), "new", None, None]), NAME_TYPE),
    # series limit (family made with `limit!2, two series already)
    ("inc-over-limit", lambda q, f: ("qprom_inc", [f.lim, "z", 1]), SERIES_LIMIT),
    ("series-over-limit", lambda q, f: ("qprom_series", [f.lim, "z", None, None]), SERIES_LIMIT),
    ("get-over-limit", lambda q, f: ("qprom_get", [f.lim, "z"]), UNKNOWN_SERIES),
    # text
    ("inc-label-sym-not-utf8", lambda q, f: ("qprom_inc", [f.c1, q.s(b"\xff\xfe"), 1]), TEXT_ENCODING),
    ("inc-label-str-not-utf8", lambda q, f: ("qprom_inc", [f.c1, q.string(b"a\xc3"), 1]), TEXT_ENCODING),
    ("inc-label-str-nul", lambda q, f: ("qprom_inc", [f.c1, q.string(b"a\x00b"), 1]), TEXT_ENCODING),
    ("inc-label-char-not-utf8", lambda q, f: ("qprom_inc", [f.c1, q.c(b"\xe9"), 1]), TEXT_ENCODING),
    ("inc-label-char-nul", lambda q, f: ("qprom_inc", [f.c1, q.c(b"\x00"), 1]), TEXT_ENCODING),
    ("inc-label-list-not-utf8", lambda q, f: ("qprom_inc", [f.c, q.knk(q.s("x"), q.string(b"\x80")), 1]), TEXT_ENCODING),
    ("inc-label-symvec-not-utf8", lambda q, f: ("qprom_inc", [f.c, q.syms(["x", b"\xc0\xaf"]), 1]), TEXT_ENCODING),
    ("inc-label-dict-value-not-utf8", lambda q, f: ("qprom_inc", [f.c1, q.dict(q.syms(["a"]), q.syms([b"\xff"])), 1]), TEXT_ENCODING),
    ("inc-label-dict-key-not-utf8", lambda q, f: ("qprom_inc", [f.c1, q.dict(q.syms([b"\xff"]), q.syms(["x"])), 1]), TEXT_ENCODING),
    ("set-label-surrogate", lambda q, f: ("qprom_set", [f.g, q.string(b"\xed\xa0\x80"), 1]), TEXT_ENCODING),
    ("obs-label-not-utf8", lambda q, f: ("qprom_obs", [f.h, q.s(b"\xff"), 1.0]), TEXT_ENCODING),
    ("get-label-not-utf8", lambda q, f: ("qprom_get", [f.c1, q.s(b"\xff")]), TEXT_ENCODING),
    ("series-label-not-utf8", lambda q, f: ("qprom_series", [f.c1, q.s(b"\xff"), None, None]), TEXT_ENCODING),
    ("del-label-not-utf8", lambda q, f: ("qprom_del", [f.c1, q.string(b"\xff")]), TEXT_ENCODING),
    ("inc-name-not-utf8", lambda q, f: ("qprom_inc", [q.s(f.c1.encode() + b"\xff"), "x", 1]), TEXT_ENCODING),
    ("get-name-nul", lambda q, f: ("qprom_get", [q.string(f.c1.encode() + b"\x00"), "x"]), TEXT_ENCODING),
    ("del-name-not-utf8", lambda q, f: ("qprom_del", [q.string(b"\xff"), None]), TEXT_ENCODING),
    ("series-name-nul", lambda q, f: ("qprom_series", [q.string(b"a\x00"), "x", None, None]), TEXT_ENCODING),
    ("render-fmt-not-utf8", lambda q, f: ("qprom_render", [q.string(b"text\xff")]), TEXT_ENCODING),
    ("create-name-not-utf8", lambda q, f: ("qprom_create", [_d(q, name=q.s(b"a\xff"), type="counter")]), TEXT_ENCODING),
    ("create-help-not-utf8", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="counter", help=q.string(b"\xff"))]), TEXT_ENCODING),
    ("create-help-nul", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="counter", help=q.string(b"a\x00"))]), TEXT_ENCODING),
    ("create-label-not-utf8", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="counter", labels=q.syms([b"\xff"]))]), TEXT_ENCODING),
    ("create-key-not-utf8", lambda q, f: ("qprom_create", [q.dict(q.syms(["name", "type", b"\xff"]), q.knk(q.s(f.new), q.s("counter"), q.j(1)))]), TEXT_ENCODING),
    # create: the definition
    ("create-not-dict", lambda q, f: ("qprom_create", [q.syms([f.new, "counter"])]), DEFINITION_TYPE),
    ("create-identity", lambda q, f: ("qprom_create", [None]), DEFINITION_TYPE),
    ("create-long-keys", lambda q, f: ("qprom_create", [q.dict(q.vec("j", [1, 2]), q.knk(q.s(f.new), q.s("counter")))]), DEFINITION_TYPE),
    ("create-table", lambda q, f: ("qprom_create", [q.table({"name": q.syms([f.new]), "type": q.syms(["counter"])})]), DEFINITION_TYPE),
    ("create-keyed-table", lambda q, f: ("qprom_create", [q.keyed_table({"name": q.syms([f.new])}, {"type": q.syms(["counter"])})]), DEFINITION_TYPE),
    ("create-unknown-key", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="counter", colour="red")]), UNKNOWN_OPTION),
    ("create-unknown-key-first", lambda q, f: ("qprom_create", [_d(q, Name=f.new, type="counter")]), UNKNOWN_OPTION),
    ("create-missing-name", lambda q, f: ("qprom_create", [_d(q, type="counter", help=b"h")]), MISSING_OPTION),
    ("create-missing-type", lambda q, f: ("qprom_create", [_d(q, name=f.new, help=b"h")]), MISSING_OPTION),
    ("create-empty-dict", lambda q, f: ("qprom_create", [q.dict(q.syms([]), q.knk())]), MISSING_OPTION),
    ("create-typed-values-help", lambda q, f: ("qprom_create", [q.dict(q.syms(["help"]), q.vec("j", [5]))]), OPTION_TYPE),
    ("create-typed-values-no-name", lambda q, f: ("qprom_create", [q.dict(q.syms(["limit", "ageBuckets"]), q.vec("j", [100, 5]))]), MISSING_OPTION),
    ("create-unknown-type", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="timer")]), UNKNOWN_TYPE),
    ("create-type-case", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="Counter")]), UNKNOWN_TYPE),
    ("create-type-long", lambda q, f: ("qprom_create", [_d(q, name=f.new, type=1)]), UNKNOWN_TYPE),
    ("create-name-long", lambda q, f: ("qprom_create", [_d(q, name=1, type="counter")]), NAME_TYPE),
    ("create-name-symvec", lambda q, f: ("qprom_create", [_d(q, name=[f.new], type="counter")]), NAME_TYPE),
    ("create-help-long", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="counter", help=1)]), OPTION_TYPE),
    ("create-unit-long", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="counter", unit=1)]), OPTION_TYPE),
    ("create-labels-long", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="counter", labels=1)]), LABELS_TYPE),
    ("create-labels-list-long", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="counter", labels=q.knk(q.s("a"), q.j(1)))]), LABELS_TYPE),
    ("create-labels-dict", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="counter", labels=q.dict(q.syms(["a"]), q.syms(["b"])))]), LABELS_TYPE),
    # names
    ("create-name-digit", lambda q, f: ("qprom_create", [_d(q, name="1abc", type="counter")]), INVALID_METRIC_NAME),
    ("create-name-dash", lambda q, f: ("qprom_create", [_d(q, name="a-b", type="gauge")]), INVALID_METRIC_NAME),
    ("create-name-space", lambda q, f: ("qprom_create", [_d(q, name=q.string("a b"), type="gauge")]), INVALID_METRIC_NAME),
    ("create-name-empty", lambda q, f: ("qprom_create", [_d(q, name="", type="gauge")]), INVALID_METRIC_NAME),
    ("create-name-unicode", lambda q, f: ("qprom_create", [_d(q, name="é", type="gauge")]), INVALID_METRIC_NAME),
    ("create-name-only-total", lambda q, f: ("qprom_create", [_d(q, name="_total", type="counter")]), INVALID_METRIC_NAME),
    ("create-name-only-info", lambda q, f: ("qprom_create", [_d(q, name="_info", type="info")]), INVALID_METRIC_NAME),
    ("create-label-digit", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="counter", labels=["1a"])]), INVALID_LABEL_NAME),
    ("create-label-colon", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="counter", labels=["a:b"])]), INVALID_LABEL_NAME),
    ("create-label-empty", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="counter", labels=q.knk(q.string("")))]), INVALID_LABEL_NAME),
    ("create-label-le-histogram", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="histogram", labels=["a", "le"])]), RESERVED_LABEL_NAME),
    ("create-label-quantile-summary", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="summary", labels="quantile")]), RESERVED_LABEL_NAME),
    # OpenMetrics 1.0 reserves names beginning with an underscore (issue 13, item 5)
    ("create-name-underscore", lambda q, f: ("qprom_create", [_d(q, name="_" + f.new, type="gauge")]), RESERVED_METRIC_NAME),
    ("create-name-underscore-total", lambda q, f: ("qprom_create", [_d(q, name="_" + f.new + "_total", type="counter")]), RESERVED_METRIC_NAME),
    ("create-label-underscore", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="counter", labels=["a", "_x"])]), RESERVED_LABEL_NAME),
    # OpenMetrics 1.0: an info family's unit is empty (issue 13, item 3)
    ("create-info-unit", lambda q, f: ("qprom_create", [_d(q, name=f.new + "_bytes_info", type="info", unit="bytes")]), INFO_UNIT),
    ("create-label-dunder", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="counter", labels=["__x"])]), RESERVED_LABEL_NAME),
    ("create-label-dunder-gauge", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="gauge", labels=["a", "__name__"])]), RESERVED_LABEL_NAME),
    ("create-label-duplicate", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="counter", labels=["a", "b", "a"])]), DUPLICATE_LABEL_NAME),
    ("create-unit-not-suffix", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="gauge", unit="seconds")]), INVALID_UNIT),
    ("create-unit-bad-char", lambda q, f: ("qprom_create", [_d(q, name=f.new + "_a b", type="gauge", unit="a b")]), INVALID_METRIC_NAME),
    ("create-unit-dash", lambda q, f: ("qprom_create", [_d(q, name=f.new + "_s", type="gauge", unit="-s")]), INVALID_UNIT),
    ("create-unit-whole-name", lambda q, f: ("qprom_create", [_d(q, name="seconds", type="gauge", unit="seconds")]), INVALID_UNIT),
    # existing families
    ("create-type-conflict", lambda q, f: ("qprom_create", [_d(q, name=f.c1, type="gauge", labels="a")]), TYPE_CONFLICT),
    ("create-label-conflict", lambda q, f: ("qprom_create", [_d(q, name=f.c1, type="counter", labels="b")]), LABEL_CONFLICT),
    ("create-label-conflict-none", lambda q, f: ("qprom_create", [_d(q, name=f.c1, type="counter")]), LABEL_CONFLICT),
    ("create-label-conflict-order", lambda q, f: ("qprom_create", [_d(q, name=f.c, type="counter", labels=["b", "a"])]), LABEL_CONFLICT),
    ("create-collision-total", lambda q, f: ("qprom_create", [_d(q, name=f.c1 + "_total", type="gauge")]), NAME_COLLISION),
    ("create-collision-created", lambda q, f: ("qprom_create", [_d(q, name=f.c1 + "_created", type="gauge")]), NAME_COLLISION),
    ("create-collision-bucket", lambda q, f: ("qprom_create", [_d(q, name=f.h + "_bucket", type="counter")]), NAME_COLLISION),
    ("create-collision-count", lambda q, f: ("qprom_create", [_d(q, name=f.s + "_count", type="gauge")]), NAME_COLLISION),
    ("create-collision-info-base", lambda q, f: ("qprom_create", [_d(q, name=f.i[:-len("_info")], type="gauge")]), NAME_COLLISION),
    # params
    ("create-buckets-unsorted", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="histogram", buckets=[2.0, 1.0])]), INVALID_BUCKETS),
    ("create-buckets-duplicate", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="histogram", buckets=[1, 1])]), INVALID_BUCKETS),
    ("create-buckets-neg-inf", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="histogram", buckets=[-INF, 1.0])]), INVALID_BUCKETS),
    ("create-buckets-inf-middle", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="histogram", buckets=[1.0, INF, 2.0])]), INVALID_BUCKETS),
    ("create-buckets-null", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="histogram", buckets=q.vec("f", [1.0, None]))]), NULL_VALUE),
    ("create-buckets-nan", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="histogram", buckets=q.vec("f", [float("nan")]))]), NULL_VALUE),
    ("create-buckets-symbol", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="histogram", buckets="a")]), PARAMS_TYPE),
    ("create-buckets-string", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="histogram", buckets=b"12")]), PARAMS_TYPE),
    ("create-buckets-on-counter", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="counter", buckets=[1.0])]), INVALID_PARAMS),
    ("create-buckets-on-summary", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="summary", buckets=[1.0])]), INVALID_PARAMS),
    ("create-quantiles-on-gauge", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="gauge", quantiles=[0.5])]), INVALID_PARAMS),
    ("create-maxage-on-info", lambda q, f: ("qprom_create", [_d(q, name=f.new + "_info", type="info", maxAge=10)]), INVALID_PARAMS),
    ("create-quantile-over-1", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="summary", quantiles=[0.5, 1.01])]), INVALID_QUANTILES),
    ("create-quantiles-unsorted", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="summary", quantiles=[0.9, 0.5])]), INVALID_QUANTILES),
    ("create-quantiles-duplicate", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="summary", quantiles=[0.5, 0.5])]), INVALID_QUANTILES),
    ("create-quantile-negative", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="summary", quantiles=q.f(-0.5))]), INVALID_QUANTILES),
    ("create-quantile-inf", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="summary", quantiles=q.vec("f", [INF]))]), INVALID_QUANTILES),
    ("create-maxage-zero", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="summary", maxAge=0)]), INVALID_WINDOW),
    ("create-maxage-negative", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="summary", maxAge=-1.0)]), INVALID_WINDOW),
    ("create-maxage-timespan-zero", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="summary", maxAge=q.n(0))]), INVALID_WINDOW),
    ("create-maxage-timespan-neg", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="summary", maxAge=q.n(-5))]), INVALID_WINDOW),
    ("create-maxage-timespan-null", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="summary", maxAge=q.null("n"))]), NULL_VALUE),
    ("create-maxage-huge", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="summary", maxAge=1e10)]), INVALID_WINDOW),
    ("create-maxage-inf", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="summary", maxAge=q.inf("f"))]), INVALID_WINDOW),
    ("create-maxage-longinf", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="summary", maxAge=q.inf("j"))]), INVALID_WINDOW),
    ("create-maxage-null-float", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="summary", maxAge=q.null("f"))]), OPTION_TYPE),
    ("create-maxage-symbol", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="summary", maxAge="a")]), OPTION_TYPE),
    ("create-maxage-vector", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="summary", maxAge=[1, 2])]), OPTION_TYPE),
    ("create-agebuckets-zero", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="summary", ageBuckets=0)]), INVALID_WINDOW),
    ("create-agebuckets-1025", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="summary", ageBuckets=1025)]), INVALID_WINDOW),
    ("create-agebuckets-negative", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="summary", ageBuckets=-1)]), INVALID_WINDOW),
    ("create-agebuckets-huge", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="summary", ageBuckets=2 ** 40)]), INVALID_WINDOW),
    ("create-agebuckets-float", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="summary", ageBuckets=1.5)]), OPTION_TYPE),
    ("create-agebuckets-null", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="summary", ageBuckets=q.null("j"))]), OPTION_TYPE),
    ("create-limit-zero", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="counter", limit=0)]), INVALID_SERIES_LIMIT),
    ("create-limit-negative", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="counter", limit=q.i(-2))]), INVALID_SERIES_LIMIT),
    ("create-limit-float", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="counter", limit=2.0)]), OPTION_TYPE),
    ("create-limit-null", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="counter", limit=q.null("j"))]), OPTION_TYPE),
    ("create-limit-inf", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="counter", limit=q.inf("j"))]), OPTION_TYPE),
    ("create-limit-symbol", lambda q, f: ("qprom_create", [_d(q, name=f.new, type="counter", limit="a")]), OPTION_TYPE),
    # render, limit
    ("render-unknown-format", lambda q, f: ("qprom_render", ["json"]), FORMAT_TYPE),
    ("render-format-case", lambda q, f: ("qprom_render", [q.string("TEXT")]), FORMAT_TYPE),
    ("render-format-long", lambda q, f: ("qprom_render", [q.j(1)]), FORMAT_TYPE),
    ("render-format-symvec", lambda q, f: ("qprom_render", [q.syms(["text"])]), FORMAT_TYPE),
    ("limit-zero", lambda q, f: ("qprom_limit", [q.j(0)]), INVALID_SERIES_LIMIT),
    ("limit-negative", lambda q, f: ("qprom_limit", [q.h(-1)]), INVALID_SERIES_LIMIT),
    ("limit-null", lambda q, f: ("qprom_limit", [q.null("j")]), WHOLE_NUMBER),
    ("limit-inf", lambda q, f: ("qprom_limit", [q.inf("i")]), WHOLE_NUMBER),
    ("limit-float", lambda q, f: ("qprom_limit", [q.f(10.0)]), WHOLE_NUMBER),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_input(q, ext, fx, case):
    _, build, msg = case
    name, args = build(q, fx)
    args = [a if isinstance(a, K) else q.k(a) for a in args]
    before = state(ext)
    with no_leak(q):
        assert err(ext, name, *args) == msg
        assert err(ext, name, *args) == msg             # and again: same answer
    assert [a.r for a in args] == [0] * len(args)
    assert state(ext) == before


KRR_SAMPLE = ["inc-unknown-metric", "obs-hist-vec-null-f", "create-unknown-key", "limit-zero",
              "render-unknown-format", "series-over-limit", "get-handle-null"]


@pytest.mark.parametrize("case", [c for c in BAD if c[0] in KRR_SAMPLE],
                         ids=[c[0] for c in BAD if c[0] in KRR_SAMPLE])
def test_bad_input_under_both_krr_modes(q, ext, fx, case, any_krr_mode):
    _, build, msg = case
    name, args = build(q, fx)
    before = state(ext)
    assert err(ext, name, *args) == msg
    assert state(ext) == before


# ---------------------------------------------------- every K type, per argument --

ATOMS = {"b": True, "g": uuid.UUID(int=1), "x": 1, "h": 1, "i": 1, "j": 1, "e": 1.0,
         "f": 1.0, "c": b"z", "s": "z", "p": 1, "m": 1, "d": 1, "z": 1.0, "n": 1, "u": 1,
         "v": 1, "t": 1}


def kind_makers(q):
    """label -> factory of one K of that kind: every atom type, every vector type (two
    items), a dictionary, a table, a keyed table, (::) and a lambda."""
    ks = {}
    for t, v in ATOMS.items():
        ks["-" + t] = (lambda t=t, v=v: q.atom(t, v))
        if t == "c":
            ks[t + "[]"] = lambda: q.string("zz")
        elif t == "s":
            ks[t + "[]"] = lambda: q.syms(["z", "z"])
        else:
            ks[t + "[]"] = (lambda t=t, v=v: q.vec(t, [v, v]))
    ks["dict"] = lambda: q.dict(q.syms(["p", "q"]), q.vec("j", [1, 2]))
    ks["table"] = lambda: q.table({"p": q.vec("j", [1])})
    ks["keyed"] = lambda: q.keyed_table({"p": q.vec("j", [1])}, {"v": q.vec("j", [2])})
    ks["::"] = lambda: q.identity()
    ks["lambda"] = lambda: q.lambda_("f")
    return ks


NUMERIC_ATOMS = {"-h", "-i", "-j", "-e", "-f"}
NUMERIC_VECS = {"h[]", "i[]", "j[]", "e[]", "f[]"}
TEXT = {"-s", "-c", "c[]"}

# (export, argument position, kinds that are accepted or fail otherwise, message for the rest)
SLOTS = [
    ("qprom_inc", 0, TEXT | {"-j"}, TARGET_TYPE),
    ("qprom_inc", 1, TEXT | {"s[]", "::"}, LABELS_TYPE),
    ("qprom_inc", 2, NUMERIC_ATOMS, VALUE_TYPE),
    ("qprom_dec", 0, TEXT | {"-j"}, TARGET_TYPE),
    ("qprom_dec", 1, TEXT | {"s[]", "::"}, LABELS_TYPE),
    ("qprom_dec", 2, NUMERIC_ATOMS, VALUE_TYPE),
    ("qprom_set", 0, TEXT | {"-j"}, TARGET_TYPE),
    ("qprom_set", 1, TEXT | {"s[]", "::"}, LABELS_TYPE),
    ("qprom_set", 2, NUMERIC_ATOMS, VALUE_TYPE),
    ("qprom_obs", 0, TEXT | {"-j"}, TARGET_TYPE),
    ("qprom_obs", 1, TEXT | {"s[]", "::"}, LABELS_TYPE),
    ("qprom_obs", 2, NUMERIC_ATOMS | NUMERIC_VECS, VALUE_TYPE),
    ("qprom_get", 0, TEXT | {"-j"}, TARGET_TYPE),
    ("qprom_get", 1, TEXT | {"s[]", "::"}, LABELS_TYPE),
    ("qprom_del", 0, TEXT, NAME_TYPE),
    ("qprom_del", 1, TEXT | {"s[]", "::"}, LABELS_TYPE),
    ("qprom_series", 0, TEXT, NAME_TYPE),
    ("qprom_series", 1, TEXT | {"s[]", "::"}, LABELS_TYPE),
    ("qprom_series", 2, NUMERIC_ATOMS | NUMERIC_VECS | {"::"}, PARAMS_TYPE),
    ("qprom_series", 3, NUMERIC_ATOMS | NUMERIC_VECS | {"::"}, VALUE_TYPE),
    ("qprom_create", 0, {"dict"}, DEFINITION_TYPE),
    ("qprom_render", 0, {"::"}, FORMAT_TYPE),      # sample texts "z"/"zz" are no format
    ("qprom_limit", 0, {"-h", "-i", "-j"}, WHOLE_NUMBER),
]

# create[`name`type`<key>!(name;type;x)]: (key, metric type, accepted kinds, message)
CREATE_KEYS = [
    ("name", "counter", TEXT, NAME_TYPE),
    ("type", "counter", set(), UNKNOWN_TYPE),       # no sample is a type name
    ("mtype", "counter", set(), UNKNOWN_TYPE),      # KX's spelling of `type
    ("help", "counter", TEXT, OPTION_TYPE),
    ("unit", "counter", TEXT, OPTION_TYPE),
    ("labels", "counter", {"-s", "c[]", "s[]", "::", "-c"}, LABELS_TYPE),  # -c: a one-letter label name
    ("buckets", "histogram", NUMERIC_ATOMS | NUMERIC_VECS | {"::"}, PARAMS_TYPE),
    ("quantiles", "summary", NUMERIC_ATOMS | NUMERIC_VECS | {"::"}, PARAMS_TYPE),
    ("maxAge", "summary", NUMERIC_ATOMS | {"-n"}, OPTION_TYPE),
    ("ageBuckets", "summary", {"-h", "-i", "-j"}, OPTION_TYPE),
    ("limit", "counter", {"-h", "-i", "-j"}, OPTION_TYPE),
]


def _baseline(q, f, export):
    """Valid arguments for each export, aimed at the fx families (series exist)."""
    return {
        "qprom_inc": [q.s(f.c1), q.s("x"), q.j(1)],
        "qprom_dec": [q.s(f.g), q.s("x"), q.j(1)],
        "qprom_set": [q.s(f.g), q.s("x"), q.f(2.5)],
        "qprom_obs": [q.s(f.h), q.s("x"), q.f(1.5)],
        "qprom_get": [q.s(f.c1), q.s("x")],
        "qprom_del": [q.s(f.c1), q.s("x")],
        "qprom_series": [q.s(f.c1), q.s("x"), q.identity(), q.identity()],
        "qprom_create": [None],
        "qprom_render": [None],
        "qprom_limit": [None],
    }[export]


@pytest.mark.parametrize("slot", SLOTS, ids=[f"{s[0][6:]}-arg{s[1]}" for s in SLOTS])
def test_every_wrong_k_type_per_argument(q, ext, fx, slot):
    export, pos, ok, msg = slot
    makers = kind_makers(q)
    before = state(ext)
    bad = [k for k in makers if k not in ok]
    got = {}
    with no_leak(q):
        for kind in bad:
            args = _baseline(q, fx, export)
            args[pos] = makers[kind]()
            try:
                ext.call(export, *args)
                got[kind] = "<no error>"
            except QError as e:
                got[kind] = e.msg
            assert [a.r for a in args] == [0] * len(args), kind
            del args
    assert got == {k: msg for k in bad}
    assert state(ext) == before


@pytest.mark.parametrize("key", CREATE_KEYS, ids=[k[0] for k in CREATE_KEYS])
def test_every_wrong_k_type_per_definition_key(q, ext, fx, key):
    opt, mtype, ok, msg = key
    makers = kind_makers(q)
    before = state(ext)
    bad = [k for k in makers if k not in ok]
    got = {}
    with no_leak(q):
        for kind in bad:
            kv = {"name": q.s(fx.new), "type": q.s(mtype)}
            if opt == "mtype":
                del kv["type"]
            kv[opt] = makers[kind]()
            d = defn(q, **kv)
            try:
                ext.call("qprom_create", d)
                got[kind] = "<no error>"
            except QError as e:
                got[kind] = e.msg
            assert d.r == 0
            del d, kv
    assert got == {k: msg for k in bad}
    assert state(ext) == before


@pytest.mark.parametrize("export", ["qprom_inc", "qprom_dec", "qprom_set", "qprom_obs"])
@pytest.mark.parametrize("t", ["h", "i", "j", "e", "f"])
def test_null_values_refused(q, ext, fx, export, t):
    target = {"qprom_inc": fx.c1, "qprom_dec": fx.g, "qprom_set": fx.g, "qprom_obs": fx.h}[export]
    before = state(ext)
    assert err(ext, export, target, "x", q.null(t)) == NULL_VALUE
    assert err(ext, export, target, "brand_new", q.null(t)) == NULL_VALUE
    hid = {"qprom_inc": fx.hc, "qprom_dec": fx.hg, "qprom_set": fx.hg, "qprom_obs": fx.hh}[export]
    assert err(ext, export, q.j(hid), None, q.null(t)) == NULL_VALUE
    if export == "qprom_obs":
        assert err(ext, export, target, "x", q.vec(t, [1, None])) == NULL_VALUE
        assert err(ext, export, target, "x", q.knk(q.atom(t, 1), q.null(t))) == NULL_VALUE
    assert state(ext) == before


def test_obs_list_with_a_null_records_nothing(q, ext, nm):
    h = create(q, ext, nm("h"), "histogram", buckets=[1.0])
    call(ext, "qprom_obs", h, None, q.vec("f", [0.5, 2.0]))
    before = metric_rows(ext, h)
    for v in (q.vec("f", [0.5, 0.5, None]), q.vec("j", [None, 1]), q.knk(q.f(1.0), q.null("e"))):
        assert err(ext, "qprom_obs", h, None, v) == NULL_VALUE
    assert metric_rows(ext, h) == before
    assert before[0]["val"] == {"count": 2, "sum": 2.5, "buckets": {1.0: 1, INF: 2}}


def test_series_limit_from_the_definition(q, ext, nm):
    c = create(q, ext, nm("c"), "counter", labels=["a"], limit=2)
    assert meta_row(ext, c)["limit"] == 2
    call(ext, "qprom_inc", c, "x", 1)
    call(ext, "qprom_inc", c, "y", 1)
    before = state(ext)
    for v in ("z", "w"):
        assert err(ext, "qprom_inc", c, v, 1) == SERIES_LIMIT
        assert err(ext, "qprom_series", c, v, None, None) == SERIES_LIMIT
    assert state(ext) == before
    call(ext, "qprom_del", c, "x")                             # room again
    call(ext, "qprom_inc", c, "z", 1)
    assert sorted(r["labels"]["a"] for r in metric_rows(ext, c)) == ["y", "z"]


# ------------------------------------------------------------- refcounts, leaks --

def test_nested_argument_refcounts_unchanged(q, ext, nm):
    c = create(q, ext, nm("c"), "counter", labels=["a", "b"])
    xa, yb = q.string("xa"), q.s("yb")
    vals = q.knk(xa, yb)
    d = q.dict(q.syms(["a", "b"]), vals)
    assert (xa.r, yb.r, vals.r, d.r) == (1, 1, 1, 0)
    call(ext, "qprom_inc", c, d, 1)
    call(ext, "qprom_inc", c, vals, 1)
    call(ext, "qprom_get", c, d)
    assert err(ext, "qprom_dec", c, d, 1) == COUNTER_DECREASE
    call(ext, "qprom_del", c, vals)
    assert (xa.r, yb.r, vals.r, d.r) == (1, 1, 1, 0)
    same = q.s(c)                                             # one object, two arguments
    assert err(ext, "qprom_inc", same, same, q.j(1)) == LABEL_COUNT
    assert same.r == 0
    dd = defn(q, name=nm("g"), type="gauge", help=q.string("h"))
    call(ext, "qprom_create", dd)
    assert dd.r == 0


def test_no_k_leak_across_every_export(q, ext, nm, fx):
    c = create(q, ext, nm("c"), "counter", labels=["a"])
    h = create(q, ext, nm("h"), "histogram", labels=["a"])
    s = create(q, ext, nm("s"), "summary", labels=["a"])
    limit = current_default_limit(q, ext)
    with no_leak(q):
        for i in range(LEAK_ROUNDS):
            call(ext, "qprom_inc", c, f"v{i % 5}", i)
            call(ext, "qprom_set", fx.g, "x", float(i))
            call(ext, "qprom_dec", fx.g, "x", 1)
            call(ext, "qprom_obs", h, "x", q.vec("f", [0.1 * i, 1.0]))
            call(ext, "qprom_obs", s, "x", i)
            hid = call(ext, "qprom_series", c, "v0", None, None)
            call(ext, "qprom_get", q.j(hid), None)
            call(ext, "qprom_render", None)
            call(ext, "qprom_render", "openmetrics")
            call(ext, "qprom_metrics", None)
            call(ext, "qprom_meta", None)
            call(ext, "qprom_create", defn(q, name=c, type="counter", labels=["a"]))
            call(ext, "qprom_create", defn(q, name=nm(f"t{i}"), type="gauge"))
            call(ext, "qprom_del", nm(f"t{i}"), None)
            call(ext, "qprom_limit", q.j(limit))
            with ext.call_k("qprom_metrics", None) as t:
                t.b9()
            for bad in (("qprom_inc", c, "x", -1), ("qprom_get", c, "nope"),
                        ("qprom_create", defn(q, name=c, type="gauge")),
                        ("qprom_obs", h, "x", q.vec("f", [1.0, None])),
                        ("qprom_limit", 0), ("qprom_render", "x"), ("qprom_del", "zz_none", None),
                        ("qprom_series", c, "v0", "a", None)):
                with pytest.raises(QError):
                    ext.call(*bad)


# ---------------------------------------------------------------------- threads --

def in_threads(q, n, fn):
    """q.in_threads, but a failure in a thread comes back as plain text: the traceback
    (and the K objects its frames hold) is dropped on the thread that made them, before
    the thread ends (m9), so nothing touches that thread's K memory afterwards."""
    failures = {}

    def run(i):
        try:
            fn(i)
        except BaseException:  # noqa: BLE001
            failures[i] = traceback.format_exc()

    gc.collect()            # no earlier garbage freed on a worker thread (wrong pool)
    gc.disable()
    try:
        q.in_threads(n, run)
    finally:
        gc.enable()
    if failures:
        pytest.fail("\n".join(f"thread {i}:\n{t}" for i, t in sorted(failures.items())),
                    pytrace=False)



def test_concurrent_inc_is_exact(q, ext, nm):
    c = create(q, ext, nm("c"), "counter", labels=["a"])
    g = create(q, ext, nm("g"), "gauge", labels=["a"])
    leaks = {}

    def work(i):
        base = q.mem()
        _work(i)
        leaks[i] = q.mem() - base

    def _work(i):
        name, gname, shared = q.s(c), q.s(g), q.s("shared")
        mine, fresh = q.syms([f"t{i}"]), q.dict(q.syms(["a"]), q.knk(q.string(f"new{i}")))
        incs = [q.j(1), q.i(1), q.h(1), q.f(1.0)]
        hid = call(ext, "qprom_series", name, q.string(f"h{i}"), None, None)
        handle = q.j(hid)
        for n in range(THREAD_INCS):
            call(ext, "qprom_inc", name, shared, incs[n % 4])
            if n % 10 == 0:
                call(ext, "qprom_inc", name, mine, q.j(2))
                call(ext, "qprom_inc", handle, None, incs[n % 4])
                call(ext, "qprom_inc", gname, shared, q.f(0.5))
                call(ext, "qprom_dec", gname, shared, q.j(1))
            if n % 100 == 0:
                call(ext, "qprom_inc", name, fresh, 1)          # created by the first call
                call(ext, "qprom_inc", name, "racy", 1)         # all four threads create it
                assert call(ext, "qprom_get", name, shared) >= n + 1

    in_threads(q, 4, work)
    assert leaks == {i: 0 for i in range(4)}
    n10, n100 = THREAD_INCS // 10, THREAD_INCS // 100
    assert get(q, ext, c, "shared") == 4.0 * THREAD_INCS
    assert get(q, ext, c, "racy") == 4.0 * n100
    for i in range(4):
        assert get(q, ext, c, f"t{i}") == 2.0 * n10
        assert get(q, ext, c, f"new{i}") == float(n100)
        assert get(q, ext, c, f"h{i}") == float(n10)
    assert get(q, ext, g, "shared") == 4 * n10 * -0.5
    labels = sorted(r["labels"]["a"] for r in metric_rows(ext, c))
    assert labels == sorted(["shared", "racy"] + [f"{p}{i}" for i in range(4) for p in ("t", "new", "h")])


def test_concurrent_obs_count_equals_inf_bucket(q, ext, nm):
    h = create(q, ext, nm("h"), "histogram", labels=["a"], buckets=[1.0, 2.0])
    per, batch = THREAD_OBS, 5
    done = threading.Event()
    writers_left = [3]
    lock = threading.Lock()
    seen = []

    def reader():
        name = q.s(h)
        while not done.is_set():
            for r in call(ext, "qprom_metrics", None).rows():
                if r["metric"] == h:
                    v = r["val"]
                    b = v["buckets"]
                    assert v["count"] == b[INF] and b[1.0] == 0 and b[2.0] == b[INF]
                    assert v["sum"] == 1.5 * v["count"]
                    seen.append(v["count"])
            text = render(ext)
            lines = [l for l in text.split("\n") if l.startswith(h)]
            cnt = [l for l in lines if l.startswith(f"{h}_count")]
            inf = [l for l in lines if 'le="+Inf"' in l]
            if cnt:
                assert cnt[0].rsplit(" ", 1)[1] == inf[0].rsplit(" ", 1)[1]
            if seen:                                  # the series exists from here on
                assert call(ext, "qprom_get", name, "x") >= 1.5 * seen[-1]

    def writer(i):
        name, lab = q.s(h), q.s("x")
        one, many = q.f(1.5), q.vec("f", [1.5] * batch)
        hid = q.j(call(ext, "qprom_series", name, lab, None, None))
        for n in range(per):
            call(ext, "qprom_obs", name, lab, one)
            call(ext, "qprom_obs", hid, None, many)
            call(ext, "qprom_obs", name, lab, q.e(1.5) if n % 2 else q.vec("e", [1.5]))
        with lock:
            writers_left[0] -= 1
            if writers_left[0] == 0:
                done.set()

    def work(i):
        with no_leak(q):
            if i == 0:
                reader()
            else:
                writer(i)

    in_threads(q, 4, work)
    total = 3 * per * (batch + 2)
    row = metric_rows(ext, h)[0]["val"]
    assert row == {"count": total, "sum": 1.5 * total, "buckets": {1.0: 0, 2.0: total, INF: total}}
    assert seen == sorted(seen)                 # the count never goes backwards
    # the race happened: the reader saw the series while the writers were still at it
    assert any(0 < c < total for c in seen), (len(seen), seen[:3], seen[-3:], total)


def test_concurrent_mixed_operations_only_fail_cleanly(q, ext, nm):
    """4 threads at once: create/del families and series, updates by name and by (possibly
    stale) id, scrapes. Every call succeeds or fails with a prom: message, no thread
    leaks K memory, and afterwards both expositions parse."""
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse
    from prometheus_client.parser import text_string_to_metric_families as text_parse
    types = ["counter", "gauge", "histogram", "summary", "info"]
    names = [(nm(f"{t}{k}") + ("_info" if t == "info" else ""), t) for t in types for k in range(2)]
    ids, lock, msgs, leaks = [], threading.Lock(), {}, {}

    def one(rng, n, t):
        lb = rng.choice(["x", "y", "z"])
        op = rng.randrange(12)
        if op == 0:
            return call(ext, "qprom_create", defn(q, name=n, type=t, labels=["a"]))
        if op == 1:
            return call(ext, "qprom_del", n, None if rng.random() < 0.3 else lb)
        if op == 2:
            hid = call(ext, "qprom_series", n, lb, None, None)
            with lock:
                ids.append(hid)
            return hid
        if op in (3, 4):
            with lock:
                hid = rng.choice(ids) if ids else 0
            target, labels = q.j(hid), None
        else:
            target, labels = q.s(n), q.s(lb)
        if op in (3, 5):
            return call(ext, "qprom_inc", target, labels, rng.choice([1, 0.5]))
        if op in (4, 6):
            return call(ext, "qprom_obs", target, labels, q.vec("f", [0.1, 2.0]))
        if op == 7:
            return call(ext, "qprom_set", target, labels, 3)
        if op == 8:
            return call(ext, "qprom_get", target, labels)
        fn, arg = [("qprom_render", rng.choice(["text", "openmetrics"])),
                   ("qprom_metrics", None), ("qprom_meta", None)][op - 9]
        with ext.call_k(fn, arg) as k:           # big: checked by type, not decoded
            assert k.t == (10 if op == 9 else 98)

    def work(i):
        base = q.mem()
        rng = random.Random(i)
        mine = {}
        for _ in range(MIXED_OPS):
            n, t = rng.choice(names)
            try:
                one(rng, n, t)
            except QError as e:
                mine[e.msg] = mine.get(e.msg, 0) + 1
        leaks[i] = q.mem() - base
        with lock:
            for m, c in mine.items():
                msgs[m] = msgs.get(m, 0) + c

    in_threads(q, 4, work)
    assert leaks == {i: 0 for i in range(4)}
    assert all(m.startswith("prom: ") for m in msgs), msgs
    assert set(msgs) <= {UNKNOWN_METRIC, UNKNOWN_SERIES, WRONG_TYPE, LABEL_COUNT,
                         COUNTER_DECREASE}, msgs
    text = render(ext)
    fams = {f.name for f in text_parse(text)}
    om = {f.name for f in om_parse(render(ext, "openmetrics"))}
    for n, t in names:
        if meta_row(ext, n) is not None:
            assert (n[:-len("_info")] if t == "info" else n) in om
            assert n in fams or n[:-len("_info")] in fams


# ============================================== fixed bugs, kept as regression tests
# refused() raises Accepted and same_state() StateChanged, so a regression reads as what
# it is.

class StateChanged(AssertionError):
    """A call that failed left the store changed."""


class Accepted(Exception):
    """A call that must be refused succeeded."""


def refused(ext, name, *args) -> str:
    try:
        ext.call(name, *args)
    except QError as e:
        return e.msg
    raise Accepted(f"{name} succeeded")


def same_state(before, after):
    if before != after:
        raise StateChanged("the store changed although the call failed")


# Fixed (c0fabf0, "refused updates leave no new series"): kept as regression tests.
@pytest.mark.parametrize("op", ["inc-negative", "inc-inf", "dec-counter", "obs-counter",
                                "obs-vec-counter", "inc-histogram", "set-info"])
def test_refused_update_leaves_no_new_series(q, ext, nm, op):
    c = create(q, ext, nm("c"), "counter", labels=["a"])
    h = create(q, ext, nm("h"), "histogram", labels=["a"])
    i = create(q, ext, nm("x_info"), "info", labels=["a"])
    name, args, msg = {
        "inc-negative": ("qprom_inc", [c, "new", -1], NEGATIVE_INCREMENT),
        "inc-inf": ("qprom_inc", [c, "new", q.inf("f")], NOT_FINITE),
        "dec-counter": ("qprom_dec", [c, "new", 1], COUNTER_DECREASE),
        "obs-counter": ("qprom_obs", [c, "new", 1.0], WRONG_TYPE),
        "obs-vec-counter": ("qprom_obs", [c, "new", q.vec("f", [1.0])], WRONG_TYPE),
        "inc-histogram": ("qprom_inc", [h, "new", 1], WRONG_TYPE),
        "set-info": ("qprom_set", [i, "new", 1], WRONG_TYPE),
    }[op]
    before = state(ext)
    assert refused(ext, name, *args) == msg
    same_state(before, state(ext))


# Fixed (c0fabf0, "strict create params"): kept as regression tests.
@pytest.mark.parametrize("opts", ["hist-quantiles", "hist-maxAge", "hist-ageBuckets",
                                  "summary-buckets+quantiles"])
def test_params_of_another_type_are_refused(q, ext, nm, opts):
    name = nm("m")
    d = {"hist-quantiles": lambda: defn(q, name=name, type="histogram", quantiles=[0.5]),
         "hist-maxAge": lambda: defn(q, name=name, type="histogram", maxAge=10),
         "hist-ageBuckets": lambda: defn(q, name=name, type="histogram", buckets=[1.0],
                                         ageBuckets=2),
         "summary-buckets+quantiles": lambda: defn(q, name=name, type="summary",
                                                   buckets=[1.0], quantiles=[0.5])}[opts]()
    before = state(ext)
    assert refused(ext, "qprom_create", d) == INVALID_PARAMS
    assert state(ext) == before


# Fixed: a one-character label name given as a string (q makes it a char atom).
def test_one_char_label_name_string(q, ext, nm):
    name = nm("c")
    assert ext.call("qprom_create", defn(q, name=name, type="counter", labels=q.c(b"a"))) == name
    assert meta_row(ext, name)["labels"] == ["a"]


# Fixed: (::) is not a value to observe.
def test_obs_identity_value_is_refused(q, ext, nm):
    h = create(q, ext, nm("h"), "histogram", labels=["a"])
    before = state(ext)
    assert refused(ext, "qprom_obs", h, "x", None) == VALUE_TYPE
    assert state(ext) == before
