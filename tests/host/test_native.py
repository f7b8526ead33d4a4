"""Native histograms and exemplars through the exports, as q calls them: `.prom.create`'s
native* keys, `.prom.incEx`/`.prom.obsEx` (qprom_inc_ex, qprom_obs_ex), and `.prom.init`'s
`nativeHistograms` and `exemplars` keys.

Every refused call is checked for its exact `prom: ...` text and for changing nothing (the
whole store before and after, `state()`). What the native buckets hold is checked in the
store's unit tests (src/metric/native.rs) and, through a real Prometheus, in
test_e2e_native.py; here, that the q-facing paths reach them.
"""
from __future__ import annotations

import math

import pytest

from test_exports import (INVALID_PARAMS, NULL_VALUE, NEGATIVE_INCREMENT, OPTION_TYPE, UNKNOWN_OPTION,
                          WRONG_TYPE, call, create, defn, err, ext, get, meta_row, nm, render, state)  # noqa: F401

INVALID_NATIVE = ("prom: native histogram needs nativeSchema -4 to 8 or nativeFactor > 1, "
                  "nativeZeroThreshold >= 0, nativeMaxBuckets 1 to 32768, nativeMinReset >= 0")
EXEMPLAR_LABELS = "prom: exemplar must be a non-empty dictionary of distinct label names to strings"
EXEMPLAR_TOO_LONG = "prom: exemplar labels exceed 128 characters"


def ex(q, **labels):
    """An exemplar as q writes it: label names ! strings."""
    return q.dict(q.syms(list(labels)), q.knk(*[q.string(v) for v in labels.values()]))


def test_create_takes_every_native_key(q, ext, nm):
    create(q, ext, nm("a"), "histogram", nativeSchema=q.j(3))
    create(q, ext, nm("b"), "histogram", nativeFactor=q.f(1.1), nativeZeroThreshold=q.f(1e-9),
           nativeMaxBuckets=q.j(40), nativeMinReset=q.n(3_600 * 10 ** 9))
    create(q, ext, nm("c"), "histogram", nativeSchema=q.h(-4), nativeMinReset=q.j(0),
           buckets=q.vec("f", [0.1, 1.0]))
    create(q, ext, nm("d"), "histogram", nativeMaxBuckets=q.i(1), nativeMinReset=q.f(2.5))
    # classic buckets only when given (only +Inf otherwise); metricMeta shows them
    assert list(meta_row(ext, nm("a"))["params"]) == []
    assert list(meta_row(ext, nm("c"))["params"]) == [0.1, 1.0]


@pytest.mark.parametrize("kv, msg", [
    ({"nativeSchema": 9}, INVALID_NATIVE),
    ({"nativeSchema": -5}, INVALID_NATIVE),
    ({"nativeFactor": 1.0}, INVALID_NATIVE),
    ({"nativeFactor": float("inf")}, INVALID_NATIVE),
    ({"nativeSchema": 3, "nativeFactor": 1.1}, INVALID_NATIVE),
    ({"nativeMaxBuckets": 0}, INVALID_NATIVE),
    ({"nativeMaxBuckets": 32769}, INVALID_NATIVE),
    ({"nativeZeroThreshold": -1.0}, INVALID_NATIVE),
    ({"nativeMinReset": -1.0}, INVALID_NATIVE),
    ({"nativeSchema": 2.5}, OPTION_TYPE),
    ({"nativeSchema": "x"}, OPTION_TYPE),
    ({"nativeFactor": "x"}, OPTION_TYPE),
    ({"nativeBogus": 1}, UNKNOWN_OPTION),
])
def test_bad_native_keys_are_refused_and_change_nothing(q, ext, nm, kv, msg):
    def kobj(v):
        if isinstance(v, str):
            return q.s(v)
        return q.j(v) if isinstance(v, int) else q.f(v)
    before = state(ext)
    assert err(ext, "qprom_create", defn(q, name=q.s(nm()), type=q.s("histogram"),
                                         **{k: kobj(v) for k, v in kv.items()})) == msg
    assert state(ext) == before


def test_native_keys_are_for_histograms_only(q, ext, nm):
    for mtype in ("counter", "gauge", "summary", "info"):
        before = state(ext)
        assert err(ext, "qprom_create", defn(q, name=q.s(nm(mtype)), type=q.s(mtype), nativeSchema=q.j(3))) \
            == INVALID_PARAMS
        assert state(ext) == before


def test_text_shows_a_native_histograms_classic_part(q, ext, nm):
    """Text and OpenMetrics have no native buckets: +Inf, _count and _sum (and the
    classic buckets when given)."""
    create(q, ext, nm("n"), "histogram", nativeSchema=q.j(0))
    create(q, ext, nm("nc"), "histogram", nativeSchema=q.j(0), buckets=q.vec("f", [1.0]))
    for name in (nm("n"), nm("nc")):
        call(ext, "qprom_obs", name, None, q.vec("f", [0.5, 2.0, 300.0]))
    text = render(ext)
    assert f'# TYPE {nm("n")} histogram\n{nm("n")}_bucket{{le="+Inf"}} 3\n{nm("n")}_count 3\n{nm("n")}_sum 302.5\n' in text
    assert f'{nm("n")}_bucket{{le="1"}}' not in text
    assert f'{nm("nc")}_bucket{{le="1"}} 1\n' in text
    assert get(q, ext, nm("n")) == 302.5


def test_obs_ex_and_inc_ex_record_the_value(q, ext, nm):
    create(q, ext, nm("h"), "histogram", buckets=q.vec("f", [1.0]), labels=q.syms(["k"]))
    create(q, ext, nm("c"), "counter")
    call(ext, "qprom_obs_ex", nm("h"), q.s("x"), q.f(0.25), ex(q, trace_id="abc"))
    call(ext, "qprom_obs_ex", nm("h"), q.s("x"), q.j(3), q.dict(q.syms(["user"]), q.syms(["alice"])))
    call(ext, "qprom_inc_ex", nm("c"), None, q.j(2), ex(q, trace_id="t1", user="bob"))
    assert get(q, ext, nm("h"), q.s("x")) == 3.25
    assert get(q, ext, nm("c")) == 2.0
    # never in text 0.0.4
    assert "# {" not in render(ext)


def test_bad_exemplars_and_values_are_refused_and_change_nothing(q, ext, nm):
    create(q, ext, nm("h"), "histogram")
    create(q, ext, nm("c"), "counter")
    create(q, ext, nm("g"), "gauge")
    call(ext, "qprom_obs", nm("h"), None, q.f(1.0))
    call(ext, "qprom_inc", nm("c"), None, q.j(1))
    cases = [
        ("qprom_obs_ex", nm("h"), q.f(1.0), q.j(7), EXEMPLAR_LABELS),
        ("qprom_obs_ex", nm("h"), q.f(1.0), q.dict(q.syms([]), q.knk()), EXEMPLAR_LABELS),
        ("qprom_obs_ex", nm("h"), q.f(1.0), ex(q, **{"1bad": "x"}), EXEMPLAR_LABELS),
        ("qprom_obs_ex", nm("h"), q.f(1.0), q.dict(q.syms(["a", "a"]), q.knk(q.string("x"), q.string("y"))),
         EXEMPLAR_LABELS),
        ("qprom_obs_ex", nm("h"), q.f(1.0), q.dict(q.syms(["a"]), q.knk(q.j(1))), EXEMPLAR_LABELS),
        # 128 code points in all: 1 + 127 is the most
        ("qprom_obs_ex", nm("h"), q.f(1.0), ex(q, a="é" * 128), EXEMPLAR_TOO_LONG),
        ("qprom_obs_ex", nm("h"), q.f(float("nan")), ex(q, a="x"), NULL_VALUE),   # 0n is q's null
        ("qprom_obs_ex", nm("c"), q.f(1.0), ex(q, a="x"), WRONG_TYPE),
        ("qprom_inc_ex", nm("h"), q.f(1.0), ex(q, a="x"), WRONG_TYPE),
        ("qprom_inc_ex", nm("g"), q.f(1.0), ex(q, a="x"), WRONG_TYPE),
        ("qprom_inc_ex", nm("c"), q.f(-1.0), ex(q, a="x"), NEGATIVE_INCREMENT),
        ("qprom_inc_ex", nm("c"), q.f(1.0), ex(q, a="x" * 140), EXEMPLAR_TOO_LONG),
    ]
    for export, name, v, e, msg in cases:
        before = state(ext)
        assert err(ext, export, name, None, v, e) == msg, (export, msg)
        assert state(ext) == before, (export, msg)
    call(ext, "qprom_obs_ex", nm("h"), None, q.f(1.0), ex(q, a="é" * 127))
    assert get(q, ext, nm("h")) == 2.0


def test_init_keys_parse_and_exemplars_turn_the_middleware_call_on(q, qprom, proc):
    r, _, _ = proc.init({"exemplars": q.b(True), "nativeHistograms": q.b(True)})
    assert r.py()["mw"] is True
    proc.restore()
    r, _, _ = proc.init({"nativeHistograms": q.dict(q.syms(["schema", "maxBuckets"]), q.knk(q.j(2), q.j(50)))})
    assert r.py()["mw"] is False
    proc.restore()


@pytest.mark.parametrize("value, msg", [
    ("bad-dict", INVALID_NATIVE),
    ("unknown-key", "prom: unknown configuration key"),
    ("long", "prom: wrong type for a configuration key"),
])
def test_bad_native_init_values_change_nothing(q, qprom, proc, value, msg):
    from test_lifecycle import _families
    v = {"bad-dict": q.dict(q.syms(["schema"]), q.knk(q.j(12))),
         "unknown-key": q.dict(q.syms(["bogus"]), q.knk(q.j(1))),
         "long": q.j(1)}[value]
    before = _families(q, qprom)
    with pytest.raises(Exception) as e:
        proc.init({"nativeHistograms": v})
    assert msg in str(e.value)
    assert _families(q, qprom) == before


def test_serve_protobuf_gives_the_native_buckets_and_exemplars(q, ext, nm):
    """`.prom.serve`protobuf`: a byte vector of delimited MetricFamily messages, with the
    native buckets (schema 0: 1 in bucket 0, 2 in bucket 1, 300 in bucket 9) and the
    exemplar of the `+Inf` bucket (the only classic one)."""
    from metrics_pb import decode_delimited, metric_family_class
    create(q, ext, nm("pb"), "histogram", nativeSchema=q.j(0), help=q.string("N."))
    call(ext, "qprom_obs", nm("pb"), None, q.vec("f", [1.0, 2.0, 300.0]))
    call(ext, "qprom_obs_ex", nm("pb"), None, q.f(2.0), ex(q, trace_id="abc"))
    r = ext.call_k("qprom_render", q.s("protobuf"))
    assert r.t == 4
    fams = {f.name: f for f in decode_delimited(bytes(r.py()), metric_family_class())}
    h = fams[nm("pb")].metric[0].histogram
    assert (h.sample_count, h.sample_sum, h.schema) == (4, 305.0, 0)
    spans = [(s.offset, s.length) for s in h.positive_span]
    deltas = list(h.positive_delta)
    # absolute counts from the spans and deltas
    counts, k, c = {}, 0, 0
    it = iter(deltas)
    for i, (off, n) in enumerate(spans):
        k = off if i == 0 else k + off
        for _ in range(n):
            c += next(it)
            if c:
                counts[k] = c
            k += 1
    assert counts == {0: 1, 1: 2, 9: 1}
    inf = [b for b in h.bucket if math.isinf(b.upper_bound)]
    assert [(l.name, l.value) for l in inf[0].exemplar.label] == [("trace_id", "abc")] and inf[0].exemplar.value == 2.0
    # the text formats are strings, as before
    assert ext.call_k("qprom_render", q.s("openmetrics")).t == 10
