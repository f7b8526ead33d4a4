"""KX's exporter.q (prometheus-kdb-exporter, tag 1.0.1) replayed as export calls: the
drop-in of issue #12, checked here where no q runs (tests/q/test_kx_exporter.q loads the
script itself where q exists).

A KX user's migration is to load prom.q instead of KX's extract.q under their exporter.q.
Its calls, in order: newmetric -> qprom_create, addmetric -> qprom_series, then
`.prom.init[]` -> qprom_defaults (in either naming) and the sample init takes, then the
events its hooks turn into updval calls (on_poll, on_po, before/after of a request; our
default error hook for a request that fails) -> qprom_updval, as prom.q's .prom.updval
names : + - , (`set`add`sub`obs). Each scenario runs in a fresh process (the registry is
process-global: KX's `kdb_info` gauge would change the other modules' families) and
reports what the store holds; the assertions are here.

KX_LINES is the newmetric/addmetric part of exporter.q 1.0.1, verbatim; when
tests/q/kx_fetch.sh has fetched the file (target/kx/exporter.q, sha256-pinned), the test
checks that these lines are exactly the file's.
"""
from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

KX_LINES = r"""
.prom.newmetric[`kdb_info;`gauge;infokeys;"process information"]
.prom.newmetric[`memory_usage_bytes;`gauge;();"memory allocated"]
.prom.newmetric[`memory_heap_bytes;`gauge;();"memory available in the heap"]
.prom.newmetric[`memory_heap_peak_bytes;`counter;();"maximum heap size so far"]
.prom.newmetric[`memory_heap_limit_bytes;`gauge;();"limit on thread heap size"]
.prom.newmetric[`memory_mapped_bytes;`gauge;();"mapped memory"]
.prom.newmetric[`memory_physical_bytes;`gauge;();"physical memory available"]
.prom.newmetric[`kdb_syms_total;`counter;();"number of symbols"]
.prom.newmetric[`kdb_syms_memory_bytes;`counter;();"memory use of symbols"]
.prom.newmetric[`kdb_ipc_opened_total;`counter;();"number of ipc sockets opened"]
.prom.newmetric[`kdb_ipc_closed_total;`counter;();"number of ipc sockets closed"]
.prom.newmetric[`kdb_ws_opened_total;`counter;();"number of websockets opened"]
.prom.newmetric[`kdb_ws_closed_total;`counter;();"number of websockets closed"]
.prom.newmetric[`kdb_handles_total;`gauge;();"number of open handles (ipc and websocket)"]
.prom.newmetric[`kdb_sync_total;`counter;();"number of sync requests"]
.prom.newmetric[`kdb_async_total;`counter;();"number of async requests"]
.prom.newmetric[`kdb_http_get_total;`counter;();"number of http get requests"]
.prom.newmetric[`kdb_http_post_total;`counter;();"number of http post requests"]
.prom.newmetric[`kdb_ws_total;`counter;();"number of websocket messages"]
.prom.newmetric[`kdb_ts_total;`counter;();"number of timer calls"]
.prom.newmetric[`kdb_sync_err_total;`counter;();"number of errors from sync requests"]
.prom.newmetric[`kdb_async_err_total;`counter;();"number of errors from async requests"]
.prom.newmetric[`kdb_http_get_err_total;`counter;();"number of errors from http get requests"]
.prom.newmetric[`kdb_http_post_err_total;`counter;();"number of errors from http post requests"]
.prom.newmetric[`kdb_ws_err_total;`counter;();"number of errors from websocket messages"]
.prom.newmetric[`kdb_ts_err_total;`counter;();"number of errors from timer calls"]
.prom.newmetric[`kdb_sync_summary_seconds;`summary;();"duration of sync requests"]
.prom.newmetric[`kdb_async_summary_seconds;`summary;();"duration of async requests"]
.prom.newmetric[`kdb_http_get_summary_seconds;`summary;();"duration of http get requests"]
.prom.newmetric[`kdb_http_post_summary_seconds;`summary;();"duration of http post requests"]
.prom.newmetric[`kdb_ws_summary_seconds;`summary;();"duration of websocket messages"]
.prom.newmetric[`kdb_ts_summary_seconds;`summary;();"duration of timer calls"]
.prom.newmetric[`kdb_sync_histogram_seconds;`histogram;();"duration of sync requests"]
.prom.newmetric[`kdb_async_histogram_seconds;`histogram;();"duration of async requests"]
.prom.newmetric[`kdb_http_get_histogram_seconds;`histogram;();"duration of http get requests"]
.prom.newmetric[`kdb_http_post_histogram_seconds;`histogram;();"duration of http post requests"]
.prom.newmetric[`kdb_ws_histogram_seconds;`histogram;();"duration of websocket messages"]
.prom.newmetric[`kdb_ts_histogram_seconds;`histogram;();"duration of timer calls"]
info      :.prom.addmetric[`kdb_info;infovals;();1f]
mem       :.prom.addmetric[`memory_usage_bytes;();();0f]
mem_heap  :.prom.addmetric[`memory_heap_bytes;();();0f]
mem_lim   :.prom.addmetric[`memory_heap_peak_bytes;();();0f]
mem_max   :.prom.addmetric[`memory_heap_limit_bytes;();();0f]
mem_map   :.prom.addmetric[`memory_mapped_bytes;();();0f]
mem_phys  :.prom.addmetric[`memory_physical_bytes;();();0f]
sym_num   :.prom.addmetric[`kdb_syms_total;();();0f]
sym_mem   :.prom.addmetric[`kdb_syms_memory_bytes;();();0f]
ipc_opened:.prom.addmetric[`kdb_ipc_opened_total;();();0f]
ipc_closed:.prom.addmetric[`kdb_ipc_closed_total;();();0f]
ws_opened :.prom.addmetric[`kdb_ws_opened_total;();();0f]
ws_closed :.prom.addmetric[`kdb_ws_closed_total;();();0f]
hdl_open  :.prom.addmetric[`kdb_handles_total;();();0f]
qry_sync  :.prom.addmetric[`kdb_sync_total;();();0f]
qry_async :.prom.addmetric[`kdb_async_total;();();0f]
qry_http  :.prom.addmetric[`kdb_http_get_total;();();0f]
qry_post  :.prom.addmetric[`kdb_http_post_total;();();0f]
qry_ws    :.prom.addmetric[`kdb_ws_total;();();0f]
qry_ts    :.prom.addmetric[`kdb_ts_total;();();0f]
err_sync  :.prom.addmetric[`kdb_sync_err_total;();();0f]
err_async :.prom.addmetric[`kdb_async_err_total;();();0f]
err_http  :.prom.addmetric[`kdb_http_get_err_total;();();0f]
err_post  :.prom.addmetric[`kdb_http_post_err_total;();();0f]
err_ws    :.prom.addmetric[`kdb_ws_err_total;();();0f]
err_ts    :.prom.addmetric[`kdb_ts_err_total;();();0f]
summ_sync :.prom.addmetric[`kdb_sync_summary_seconds;();.25 .5 .75;0#0f]
summ_async:.prom.addmetric[`kdb_async_summary_seconds;();.25 .5 .75;0#0f]
summ_http :.prom.addmetric[`kdb_http_get_summary_seconds;();.25 .5 .75;0#0f]
summ_post :.prom.addmetric[`kdb_http_post_summary_seconds;();.25 .5 .75;0#0f]
summ_ws   :.prom.addmetric[`kdb_ws_summary_seconds;();.25 .5 .75;0#0f]
summ_ts   :.prom.addmetric[`kdb_ts_summary_seconds;();.25 .5 .75;0#0f]
hist_sync :.prom.addmetric[`kdb_sync_histogram_seconds;();.25 .5 1 5 10;0#0f]
hist_async:.prom.addmetric[`kdb_async_histogram_seconds;();.25 .5 1 5 10;0#0f]
hist_http :.prom.addmetric[`kdb_http_get_histogram_seconds;();.25 .5 1 5 10;0#0f]
hist_post :.prom.addmetric[`kdb_http_post_histogram_seconds;();.25 .5 1 5 10;0#0f]
hist_ws   :.prom.addmetric[`kdb_ws_histogram_seconds;();.25 .5 1 5 10;0#0f]
hist_ts   :.prom.addmetric[`kdb_ts_histogram_seconds;();.25 .5 1 5 10;0#0f]
"""

# KX HEAD (c1e8f7f, "change memory_heap_peak_bytes from counter to gauge (#30)")
HEAD_GAUGE = ".prom.newmetric[`memory_heap_peak_bytes;`gauge;();\"maximum heap size so far\"]"

INFOKEYS = ["release_date", "release_version", "os_version", "process_cores", "license_expiry_date"]
INFOVALS = ["2024.05.31", "4.1", "l64", "8", "2027.01.01"]
Q_W = {"used": 5e6, "heap": 6.7e7, "peak": 6.7e7, "wmax": 0.0, "mmap": 0.0, "mphy": 1.6e10,
       "syms": 1234.0, "symw": 56789.0}
MEMMETRICS = ["mem", "mem_heap", "mem_lim", "mem_max", "mem_map", "mem_phys", "sym_num", "sym_mem"]
SUMMARY_Q = [0.25, 0.5, 0.75]
HIST_LE = [0.25, 0.5, 1.0, 5.0, 10.0]
Q_EPOCH = 946684800

WRONG_TYPE = "prom: operation not supported by this metric type"
NEGATIVE_COUNTER = "prom: counter value must be >= 0"
LABEL_COUNT = "prom: label count mismatch"
UNKNOWN_METRIC = "prom: unknown metric"
INVALID_PARAMS = "prom: params not valid for this metric type"
PARAMS_FIXED = "prom: series exists with other params (it holds observations or is in use)"
UPDVAL_OP = "prom: updval operation must be `set`add`sub`obs"


def parse(lines: str, head=False):
    """(newmetric calls, addmetric calls) of exporter.q's text."""
    new, add = [], []
    for line in lines.strip().split("\n"):
        if head and line.startswith(".prom.newmetric[`memory_heap_peak_bytes;"):
            line = HEAD_GAUGE
        m = re.fullmatch(r'\.prom\.newmetric\[`(\w+);`(\w+);(\(\)|infokeys);"([^"]*)"\]', line)
        if m:
            new.append((m[1], m[2], INFOKEYS if m[3] == "infokeys" else [], m[4]))
            continue
        m = re.fullmatch(r"(\w+)\s*:\.prom\.addmetric\[`(\w+);(\(\)|infovals);([^;]*);([^\]]*)\]", line)
        assert m, f"not a newmetric/addmetric line: {line}"
        params = [] if m[4] == "()" else [float(x) for x in m[4].split()]
        assert m[5] in ("0f", "1f", "0#0f"), line
        start = [] if m[5] == "0#0f" else float(m[5][0])
        add.append((m[1], m[2], INFOVALS if m[3] == "infovals" else [], params, start))
    return new, add


# =================================================================== child process ==

def child(scenario: str) -> dict:
    from qhost import Host, QError
    q = Host.get()
    ext = q.load()
    out = {"errors": {}}

    def call(name, *args):
        return ext.call(name, *args)

    def err(key, name, *args):
        before = state()
        try:
            ext.call(name, *args)
            out["errors"][key] = None
        except QError as e:
            out["errors"][key] = str(e)
        out["errors"][key + "/unchanged"] = state() == before

    def state():
        return (call("qprom_render", None), repr(call("qprom_metrics", None)))

    def updval(id_, op, arg):
        call("qprom_updval", q.j(id_) if isinstance(id_, int) else id_, q.s(op), arg)

    def t0(seconds_ago):
        import time
        return q.p(time.time_ns() - Q_EPOCH * 10**9 - int(seconds_ago * 1e9))

    info = q.dict(q.syms(["release", "version", "os", "cores", "licence_expiry"]),
                  q.knk(*[s.encode() for s in INFOVALS]))
    naming = scenario.split("-")[-1]
    ids = {}
    if scenario.startswith("kx101") or scenario.startswith("kxhead"):
        new, add = parse(KX_LINES, head=scenario.startswith("kxhead"))
        # .prom.newmetric[metric;metrictype;labelnames;help]: prom.q passes
        # `name`type`labels`help!(metric;metrictype;labelnames;help)
        for name, mtype, labels, help_ in new:
            lk = q.syms(labels) if labels else q.knk()
            call("qprom_create", q.dict(q.syms(["name", "type", "labels", "help"]),
                                        q.knk(q.s(name), q.s(mtype), lk, help_.encode())))
        for var, name, labels, params, start in add:
            lk = q.knk(*[v.encode() for v in labels]) if labels else q.knk()
            pk = q.vec("f", params) if params else q.knk()
            sk = q.vec("f", []) if start == [] else q.f(start)
            ids[var] = call("qprom_series", q.s(name), lk, pk, sk)
        out["ids_distinct"] = len(set(ids.values())) == len(ids)
        # addmetric twice: the same id, nothing changed (the values are still KX's starts)
        out["addmetric_again"] = call("qprom_series", q.s("kdb_sync_summary_seconds"), q.knk(),
                                      q.vec("f", SUMMARY_Q), q.vec("f", [])) == ids["summ_sync"]
        # .prom.init[]: prom.q's init registers the defaults, then samples .Q.w and handles
        skipped = call("qprom_defaults", q.s(naming), q.knk(), info)
        out["skipped"] = skipped
        w = q.dict(q.syms(list(Q_W)), q.vec("j", [1, 2, 3, 4, 5, 6, 7, 8]))
        call("qprom_sample", w, None, q.vec("j", [0, 0]))
        # a scrape: KX's on_poll, .prom.updval[;:;]'[memmetrics;value"f"$.Q.w[]]
        for var, key in zip(MEMMETRICS, Q_W):
            updval(ids[var], "set", q.f(Q_W[key]))
        # a client connects: KX's on_po
        updval(ids["ipc_opened"], "add", q.j(1))
        updval(ids["hdl_open"], "set", q.f(1.0))
        # a sync request that succeeds: before"sync", the handler, after"sync"
        for met, sec in (("sync", 0.3), ("sync", 2.0), ("http", 0.1)):
            updval(ids["qry_" + met], "add", q.j(1))
            updval(ids["err_" + met], "add", q.j(1))
            updval(ids["err_" + met], "sub", q.j(1))
            updval(ids["summ_" + met], "obs", q.f(sec))
            updval(ids["hist_" + met], "obs", q.f(sec))
        # a sync request that fails: before"sync" only (KX has no error hook); prom.q's
        # default error_pg then records for the defaults that are qprom's
        updval(ids["qry_sync"], "add", q.j(1))
        updval(ids["err_sync"], "add", q.j(1))
        call("qprom_request", q.s("pg"), t0(0.01), q.b(True))
        # refusals that remain
        err("obs_on_counter", "qprom_updval", q.j(ids["qry_sync"]), q.s("obs"), q.f(1.0))
        err("counter_below_zero", "qprom_updval", q.j(ids["err_async"]), q.s("sub"), q.j(1))
        err("set_on_histogram", "qprom_updval", q.j(ids["hist_sync"]), q.s("set"), q.f(1.0))
        err("add_on_summary", "qprom_updval", q.j(ids["summ_sync"]), q.s("add"), q.f(1.0))
        err("labelled_by_name", "qprom_updval", q.s("kdb_info"), q.s("set"), q.f(1.0))
        err("other_op", "qprom_updval", q.j(ids["qry_sync"]), q.s("mul"), q.f(1.0))
        err("other_quantiles_after_data", "qprom_series", q.s("kdb_sync_summary_seconds"),
            q.knk(), q.vec("f", [0.5, 0.9]), q.vec("f", []))
        err("params_on_counter", "qprom_series", q.s("kdb_sync_total"), q.knk(),
            q.vec("f", [0.5]), q.f(0.0))
        out["ids"] = ids
    elif scenario == "docs":
        # KX's reference.md examples (newmetric, addmetric, updval), in their order
        fam = lambda n, t, l, h: call("qprom_create", q.dict(q.syms(["name", "type", "labels", "help"]),
                                                             q.knk(q.s(n), q.s(t), l, h)))
        fam("number_tables", "gauge", q.s("region"), b"number of tables")
        fam("size_updates", "summary", q.knk(), b"size of updates")
        numtab = [call("qprom_series", q.s("number_tables"), q.s(r), q.knk(), q.f(0.0))
                  for r in ("amer", "emea", "apac")]
        updsz = call("qprom_series", q.s("size_updates"), q.knk(), q.vec("f", [0.25, 0.5, 0.75]), q.vec("f", []))
        # KX's text passes the variables' names (`numtab1): no such metric, in KX no such
        # instance (its update is lost); qprom signals, the id is what to pass
        err("docs_symbol_of_variable", "qprom_updval", q.s("numtab1"), q.s("set"), q.j(3))
        updval(numtab[0], "set", q.j(3))
        updval(numtab[1], "add", q.j(1))
        updval(numtab[2], "sub", q.j(1))
        updval(updsz, "obs", q.vec("f", [10.0, 15.0, 20.0]))
        # an unlabelled gauge's start value, and other quantiles while still untouched
        fam("depth", "gauge", q.knk(), b"queue depth")
        out["depth_id"] = call("qprom_series", q.s("depth"), q.knk(), q.knk(), q.f(5.0))
        out["depth_again"] = call("qprom_series", q.s("depth"), q.knk(), q.knk(), q.f(7.0))
        fam("lat", "summary", q.knk(), b"latency")
        a = call("qprom_series", q.s("lat"), q.knk(), q.vec("f", [0.1]), q.vec("f", []))
        b = call("qprom_series", q.s("lat"), q.knk(), q.vec("f", [0.2, 0.8]), q.vec("f", [1.0]))
        out["lat_same_id"] = a == b
        skipped = call("qprom_defaults", q.s("standard"), q.knk(), info)
        out["skipped"] = skipped
        # a series the default metrics hold cannot be given other buckets, even untouched
        err("params_on_a_default_series", "qprom_series", q.s("kdb_request_duration_seconds"),
            q.s("sync"), q.vec("f", [1.0, 2.0]), q.knk())
        # updval by the name of an unlabelled metric
        updval(q.s("depth"), "add", q.f(1.5))
    elif scenario == "alone-kx":
        out["skipped"] = call("qprom_defaults", q.s("kx"), q.knk(), info)
    meta = call("qprom_meta", None)
    # qprom_build_info is the library's own, present in every process from the first use
    out["families"] = {r["metric"]: {"type": r["mtype"], "help": r["help"].decode(), "labels": r["labels"],
                                     "series": r["series"]} for r in meta.rows() if r["metric"] != "qprom_build_info"}
    out["values"] = {}
    for r in call("qprom_metrics", None).rows():
        v = r["val"]
        if isinstance(v, dict):
            v = {"count": v["count"], "sum": v["sum"],
                 "keys": list(v.get("quantiles", v.get("buckets", {})).keys())}
        key = r["metric"] + json.dumps(r["labels"], sort_keys=True) if r["labels"] else r["metric"]
        out["values"][key] = v
    out["text"] = call("qprom_render", None).decode()
    out["openmetrics"] = call("qprom_render", q.s("openmetrics")).decode()
    q.raise_violations("kx drop-in child")
    return out


def run(scenario: str) -> dict:
    so = Path(os.environ.get("QPROM_SO", ROOT / os.environ.get("TARGET_DIR", "target") / "l64/libqprom.so"))
    if not so.exists():
        pytest.skip(f"{so} not built")
    r = subprocess.run([sys.executable, __file__, scenario], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout.strip().split("\n")[-1])   # NaN, Infinity: Python reads its own


# ========================================================================= tests ==

KX_FAMILIES = {name: (mtype, labels, help_) for name, mtype, labels, help_ in parse(KX_LINES)[0]}


def test_transcription_is_exporter_q_1_0_1():
    new, add = parse(KX_LINES)
    assert len(new) == 38 and len(add) == 38
    fetched = ROOT / os.environ.get("TARGET_DIR", "target") / "kx/exporter.q"
    if not fetched.exists():
        pytest.skip("target/kx/exporter.q not fetched (tests/q/kx_fetch.sh)")
    text = fetched.read_text()
    mine = [l for l in text.split("\n") if l.startswith(".prom.newmetric") or ":.prom.addmetric" in l]
    assert mine == KX_LINES.strip().split("\n")


def check_kx_families(out, peak_type="counter"):
    fams = out["families"]
    for name, (mtype, labels, help_) in KX_FAMILIES.items():
        if name == "memory_heap_peak_bytes":
            mtype = peak_type
        assert (name, fams[name]["type"], fams[name]["labels"], fams[name]["help"]) == (name, mtype, labels, help_)
        assert fams[name]["series"] == 1
    v = out["values"]
    info = "kdb_info" + json.dumps(dict(zip(INFOKEYS, INFOVALS)), sort_keys=True)
    assert v[info] == 1.0
    assert [v[n] for n in ["memory_usage_bytes", "memory_heap_bytes", "memory_heap_peak_bytes",
                           "memory_heap_limit_bytes", "memory_mapped_bytes", "memory_physical_bytes",
                           "kdb_syms_total", "kdb_syms_memory_bytes"]] == list(Q_W.values())
    assert (v["kdb_ipc_opened_total"], v["kdb_handles_total"], v["kdb_ipc_closed_total"]) == (1.0, 1.0, 0.0)
    # 3 sync requests (one failed), 1 http: KX's counting, once
    assert (v["kdb_sync_total"], v["kdb_sync_err_total"]) == (3.0, 1.0)
    assert (v["kdb_http_get_total"], v["kdb_http_get_err_total"]) == (1.0, 0.0)
    assert v["kdb_async_total"] == v["kdb_async_err_total"] == 0.0
    # the successful ones observed (KX's after hook), with KX's params from addmetric
    assert v["kdb_sync_summary_seconds"] == {"count": 2, "sum": 2.3, "keys": SUMMARY_Q}
    assert v["kdb_sync_histogram_seconds"] == {"count": 2, "sum": 2.3, "keys": HIST_LE + [math.inf]}
    assert v["kdb_http_get_histogram_seconds"]["count"] == 1
    assert v["kdb_ts_summary_seconds"] == {"count": 0, "sum": 0.0, "keys": SUMMARY_Q}
    assert 'kdb_sync_histogram_seconds_bucket{le="0.5"} 1' in out["text"]
    assert 'kdb_sync_summary_seconds{quantile="0.25"}' in out["text"]
    # - lowered the error counters in place: not a reset, so _created stays where the
    # definition put it (kdb_sync_err_total was defined before kdb_async_err_total, which
    # nothing touched; a reset would have moved the first past the second)
    created = dict(re.findall(r"^(\w+)_created (\S+)$", out["openmetrics"], re.M))
    assert float(created["kdb_sync_err"]) <= float(created["kdb_async_err"])
    assert out["ids_distinct"] and out["addmetric_again"]


def check_refusals(out):
    e = out["errors"]
    assert {k: v for k, v in e.items() if "/" not in k} == {
        "obs_on_counter": WRONG_TYPE,
        "counter_below_zero": NEGATIVE_COUNTER,
        "set_on_histogram": WRONG_TYPE,
        "add_on_summary": WRONG_TYPE,
        "labelled_by_name": LABEL_COUNT,
        "other_op": UPDVAL_OP,
        "other_quantiles_after_data": PARAMS_FIXED,
        "params_on_counter": INVALID_PARAMS,
    }
    assert all(v for k, v in e.items() if k.endswith("/unchanged")), "a refusal changed the store"


def test_exporter_q_1_0_1_standard_naming():
    """KX's script, then `.prom.init[]`: its 38 families as KX makes them, qprom's standard
    defaults beside them except kdb_info (KX's gauge wins over our info family)."""
    out = run("kx101-standard")
    check_kx_families(out)
    check_refusals(out)
    assert out["skipped"] == ["kdb_info"]
    fams = out["families"]
    for n in ["kdb_requests_total", "kdb_request_errors_total", "kdb_request_duration_seconds",
              "kdb_connections_open", "kdb_memory_used_bytes", "kdb_output_queue_bytes"]:
        assert n in fams
    assert set(fams) - set(KX_FAMILIES) == {
        "kdb_requests_total", "kdb_request_errors_total", "kdb_request_duration_seconds",
        "kdb_connections_opened_total", "kdb_connections_closed_total", "kdb_connections_open",
        "kdb_memory_used_bytes", "kdb_memory_heap_bytes", "kdb_memory_heap_peak_bytes",
        "kdb_memory_heap_limit_bytes", "kdb_memory_mapped_bytes", "kdb_memory_physical_bytes",
        "kdb_symbols", "kdb_symbol_memory_bytes", "kdb_output_queue_bytes"}
    v = out["values"]
    # prom.q's default error hook recorded the failed request in qprom's own families only
    assert v['kdb_request_errors_total{"handler": "sync"}'] == 1.0
    assert v["kdb_memory_heap_bytes"] == 2.0     # init's sample


def test_exporter_q_1_0_1_kx_naming():
    """With naming kx every default family is the script's own: nothing is added, nothing
    is counted twice (the default error hook finds no family of qprom's to move)."""
    out = run("kx101-kx")
    check_kx_families(out)
    check_refusals(out)
    assert sorted(out["skipped"]) == sorted(KX_FAMILIES)
    assert set(out["families"]) == set(KX_FAMILIES)


def test_exporter_q_head_memory_heap_peak_is_a_gauge():
    """KX HEAD (#30) defines memory_heap_peak_bytes as a gauge: both namings accept it."""
    for naming in ("standard", "kx"):
        out = run("kxhead-" + naming)
        check_kx_families(out, peak_type="gauge")
        assert "memory_heap_peak_bytes" in out["skipped"] or naming == "standard"


def test_kx_naming_alone_has_kx_families_with_a_peak_gauge():
    out = run("alone-kx")
    assert out["skipped"] == []
    fams = out["families"]
    assert {n: fams[n]["type"] for n in KX_FAMILIES} == {
        n: ("gauge" if n == "memory_heap_peak_bytes" else t) for n, (t, _, _) in KX_FAMILIES.items()}


def test_kx_documented_example():
    """KX's reference.md: number_tables by region, size_updates with its own quantiles."""
    out = run("docs")
    v = out["values"]
    tab = lambda r: v['number_tables{"region": "%s"}' % r]
    assert (tab("amer"), tab("emea"), tab("apac")) == (3.0, 1.0, -1.0)
    # #19 item 3: the quantiles given to addmetric are the series' (they were 0.5 0.9 0.99)
    assert v["size_updates"] == {"count": 3, "sum": 45.0, "keys": [0.25, 0.5, 0.75]}
    assert out["errors"]["docs_symbol_of_variable"] == UNKNOWN_METRIC
    assert out["errors"]["docs_symbol_of_variable/unchanged"]
    # an unlabelled gauge takes addmetric's start value; a second addmetric changes nothing
    assert out["depth_id"] == out["depth_again"] and v["depth"] == 5.0 + 1.5
    # other quantiles while untouched: applied, same id, then the start observation
    assert out["lat_same_id"] and v["lat"] == {"count": 1, "sum": 1.0, "keys": [0.2, 0.8]}
    assert out["skipped"] == []
    assert out["errors"]["params_on_a_default_series"] == PARAMS_FIXED
    assert out["errors"]["params_on_a_default_series/unchanged"]


if __name__ == "__main__":
    print(json.dumps(child(sys.argv[1])))
