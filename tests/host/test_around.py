"""The helpers around a user's function (`.prom.time`, `.prom.countErrors(Like)`,
`.prom.trackInprogress`): prom.q's `.prom.i.run` calls qprom_around_before, applies f,
then qprom_around_after with f's outcome. What to update, when, and what a failing
update does are decided here (src/ffi/helpers.rs)."""
import time

import pytest
from qhost import QError

WRONG = "prom: operation not supported by this metric type"


@pytest.fixture
def fams(q, qprom):
    names = {"ar_seconds": "histogram", "ar_sum_seconds": "summary", "ar_last_seconds": "gauge",
             "ar_errors_total": "counter", "ar_inprogress": "gauge"}
    for n, t in names.items():
        qprom.call("qprom_create", q.k({"name": n, "type": t}))
    yield names
    for n in names:
        qprom.call("qprom_del", q.s(n), q.identity())


def _hist(q, qprom, name):
    rows = qprom.call("qprom_metrics", q.identity())
    return [v for m, v in zip(rows["metric"], rows["val"]) if m == name][0]


def _hook_errors(q, qprom, hook):
    try:
        return qprom.call("qprom_get", q.s("qprom_hook_errors_total"), q.s(hook))
    except QError:
        return 0.0


def test_time_observes_a_monotonic_duration(q, qprom, fams):
    s = qprom.call_k("qprom_around_before", q.s("time"), q.s("ar_seconds"), q.knk())
    assert s.t == -7
    time.sleep(0.02)                     # the duration measured, not a synchronisation
    qprom.call("qprom_around_after", q.s("time"), q.s("ar_seconds"), q.knk(), s, q.b(True), q.b(False))
    h = _hist(q, qprom, "ar_seconds")
    assert h["count"] == 1 and 0.02 <= h["sum"] < 5


def test_time_sets_a_gauge_and_observes_a_summary_also_on_error(q, qprom, fams):
    for name in ("ar_last_seconds", "ar_sum_seconds"):
        s = qprom.call_k("qprom_around_before", q.s("time"), q.s(name), q.knk())
        qprom.call("qprom_around_after", q.s("time"), q.s(name), q.knk(), s, q.b(False), q.b(False))
    assert qprom.call("qprom_get", q.s("ar_last_seconds"), q.knk()) >= 0.0
    assert _hist(q, qprom, "ar_sum_seconds")["count"] == 1


@pytest.mark.parametrize("kind,name,msg", [
    ("time", "ar_errors_total", WRONG),
    ("countErrors", "ar_seconds", WRONG),
    ("trackInprogress", "ar_errors_total", WRONG),
    ("time", "nope_seconds", "prom: unknown metric"),
    ("tim", "ar_seconds", "prom: helper must be `time, `countErrors or `trackInprogress"),
])
def test_before_refuses_a_wrong_target_before_f_runs(q, qprom, fams, kind, name, msg):
    before = qprom.call("qprom_render", q.s("text"))
    with pytest.raises(QError) as e:
        qprom.call("qprom_around_before", q.s(kind), q.s(name), q.knk())
    assert e.value.msg == msg
    assert qprom.call("qprom_render", q.s("text")) == before


def test_count_errors_only_when_f_signalled_and_matched(q, qprom, fams):
    c = lambda: qprom.call("qprom_get", q.s("ar_errors_total"), q.knk())
    args = (q.s("countErrors"), q.s("ar_errors_total"), q.knk(), q.identity())
    qprom.call("qprom_around_before", *args[:3])
    qprom.call("qprom_around_after", *args, q.b(True), q.b(False))
    assert c() == 0.0
    qprom.call("qprom_around_after", *args, q.b(False), q.b(False))
    assert c() == 0.0
    qprom.call("qprom_around_after", *args, q.b(False), q.b(True))
    assert c() == 1.0


def test_track_inprogress_up_then_down(q, qprom, fams):
    g = lambda: qprom.call("qprom_get", q.s("ar_inprogress"), q.knk())
    args = (q.s("trackInprogress"), q.s("ar_inprogress"), q.knk())
    qprom.call("qprom_around_before", *args)
    qprom.call("qprom_around_before", *args)
    assert g() == 2.0
    qprom.call("qprom_around_after", *args, q.identity(), q.b(True), q.b(False))
    qprom.call("qprom_around_after", *args, q.identity(), q.b(False), q.b(False))
    assert g() == 0.0


def test_a_failing_update_after_fs_error_is_a_hook_error_not_a_signal(q, qprom, fams):
    s = qprom.call_k("qprom_around_before", q.s("time"), q.s("ar_seconds"), q.knk())
    qprom.call("qprom_del", q.s("ar_seconds"), q.identity())        # gone while f ran
    n = _hook_errors(q, qprom, "time")
    assert qprom.call("qprom_around_after", q.s("time"), q.s("ar_seconds"), q.knk(), s,
                      q.b(False), q.b(False)) is None
    assert _hook_errors(q, qprom, "time") == n + 1
    # after a success the same failure signals, as any .prom update
    with pytest.raises(QError, match="^prom: unknown metric$"):
        qprom.call("qprom_around_after", q.s("time"), q.s("ar_seconds"), q.knk(), s, q.b(True), q.b(False))
    assert _hook_errors(q, qprom, "time") == n + 1
    qprom.call("qprom_create", q.k({"name": "ar_seconds", "type": "histogram"}))


def test_after_checks_its_arguments(q, qprom, fams):
    with pytest.raises(QError, match=r"^prom: value must be a number \(short, int, long, real or float\)$"):
        qprom.call("qprom_around_after", q.s("time"), q.s("ar_seconds"), q.knk(), q.j(0), q.j(1), q.b(False))
    with pytest.raises(QError, match=r"^prom: start time must be a timestamp \(.z.p\)$"):
        qprom.call("qprom_around_after", q.s("time"), q.s("ar_seconds"), q.knk(), q.s("x"), q.b(True), q.b(False))
    assert _hist(q, qprom, "ar_seconds")["count"] == 0


# ------------------------------------------- request_ex: each handler's extras, decided here --

def _now(q):
    return q.p(time.time_ns() - 946_684_800 * 10 ** 9)


def _sum(q, qprom, name, labels):
    rows = qprom.call("qprom_metrics", q.identity())
    for m, l, v in zip(rows["metric"], rows["labels"], rows["val"]):
        if m == name and all(l.get(k) == w for k, w in labels.items()):
            return v["sum"] if isinstance(v, dict) else v
    return None


def test_request_ex_takes_what_each_handler_has(q, qprom):
    cfg = q.dict(q.syms(["sizes", "user", "functions"]), q.knk(q.b(True), q.b(True), q.syms(["getTrades"])))
    qprom.call("qprom_middleware", cfg)
    req = lambda h: _sum(q, qprom, "kdb_request_size_bytes", {"handler": h}) or 0.0
    resp = lambda h: _sum(q, qprom, "kdb_response_size_bytes", {"handler": h}) or 0.0
    fn = lambda: (_sum(q, qprom, "kdb_function_request_duration_seconds",
                       {"handler": "sync", "function": "getTrades"}) is not None)
    r0 = {h: (req(h), resp(h)) for h in ("sync", "async", "timer")}
    # pg: -22! sizes; the function from the (`fn;args) message; no response size after an error
    msg = q.knk(q.s("getTrades"), q.j(5))
    qprom.call("qprom_request_ex", q.s("pg"), _now(q), q.b(False), q.j(30), q.j(70), q.s("u"), msg)
    assert (req("sync"), resp("sync")) == (r0["sync"][0] + 30, r0["sync"][1] + 70)
    assert fn()
    qprom.call("qprom_request_ex", q.s("pg"), _now(q), q.b(True), q.j(30), q.string("an error"), q.s("u"), msg)
    assert (req("sync"), resp("sync")) == (r0["sync"][0] + 60, r0["sync"][1] + 70)
    # ps: the result q drops has no size
    qprom.call("qprom_request_ex", q.s("ps"), _now(q), q.b(False), q.j(12), q.j(99), q.s("u"), msg)
    assert (req("async"), resp("async")) == (r0["async"][0] + 12, r0["async"][1])
    # ts: nothing but the request itself (no sizes, no user)
    qprom.call("qprom_request_ex", q.s("ts"), _now(q), q.b(False), q.j(5), q.j(5), q.s("u"), msg)
    assert (req("timer"), resp("timer")) == r0["timer"]
    assert _sum(q, qprom, "kdb_user_request_duration_seconds", {"handler": "timer"}) is None
    qprom.call("qprom_middleware", q.identity())
