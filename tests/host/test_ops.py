"""Operations metrics: which subscriber is slow (per-connection output queues), how late
q's event loop is (the lag probe), who failed to log in (.z.pw). Driven as prom.q drives
them: init through qprom_init, the connection hooks through qprom_peer, on_poll through
qprom_sample, .z.pw's wrapper through qprom_login."""
import time

import pytest
from qhost import QError
from test_lifecycle import Proc


def _series(q, qprom, name):
    rows = qprom.call("qprom_metrics", q.identity())
    return {tuple(sorted(l.items())): v for m, l, v in zip(rows["metric"], rows["labels"], rows["val"]) if m == name}


def _mem(q):
    return q.dict(q.syms(["used", "heap"]), q.vec("j", [10, 20]))


def _queues(q, per):
    return q.dict(q.vec("i", list(per)), q.vec("j", list(per.values())))


def test_the_slowest_connections_by_user_and_address(q, qprom, proc):
    proc.init({"queueTopN": 2, "lagProbe": 0})
    for h, u, a in ((7, "tp", 167772161), (8, "rdb", 167772162), (9, "slowsub", 167772163)):
        qprom.call("qprom_peer", q.s("po"), q.i(h), q.s(u), q.i(a))
    qprom.call("qprom_sample", _mem(q), _queues(q, {7: 10, 8: 0, 9: 5_000_000}), q.identity())
    s = _series(q, qprom, "kdb_output_queue_bytes_by_connection")
    assert s == {(("address", "10.0.0.3"), ("handle", "9"), ("user", "slowsub")): 5_000_000.0,
                 (("address", "10.0.0.1"), ("handle", "7"), ("user", "tp")): 10.0}
    assert qprom.call("qprom_get", q.s("kdb_output_queue_bytes"), q.identity()) == 5_000_010.0
    # the slow subscriber disconnects: its series goes with it, the count of open drops
    qprom.call("qprom_peer", q.s("pc"), q.i(9), q.identity(), q.identity())
    assert list(_series(q, qprom, "kdb_output_queue_bytes_by_connection")) == [(("address", "10.0.0.1"), ("handle", "7"), ("user", "tp"))]
    # a quiet sample: no queue anywhere, no series
    qprom.call("qprom_sample", _mem(q), _queues(q, {}), q.identity())
    assert _series(q, qprom, "kdb_output_queue_bytes_by_connection") == {}


def test_queue_top_n_off(q, qprom, proc):
    proc.init({"queueTopN": 0, "lagProbe": 0})
    qprom.call("qprom_sample", _mem(q), _queues(q, {5: 100}), q.identity())
    assert _series(q, qprom, "kdb_output_queue_bytes_by_connection") == {}
    assert qprom.call("qprom_get", q.s("kdb_output_queue_bytes"), q.identity()) == 100.0


@pytest.mark.parametrize("cfg", [{"queueTopN": -1}, {"queueTopN": 5000}, {"lagProbe": -1.0}, {"lagProbe": 1e6}])
def test_bad_operations_keys(q, qprom, proc, cfg):
    with pytest.raises(QError, match="^prom: queueTopN must be 0 to 1000, lagProbe 0 .off. or seconds below a day$"):
        proc.init(cfg)


def _lag(q, qprom):
    h = _series(q, qprom, "kdb_event_loop_lag_seconds")[()]
    return h["count"], h["sum"], qprom.call("qprom_get", q.s("kdb_event_loop_lag_outstanding_seconds"), q.identity())


def test_a_busy_main_thread_shows_while_it_is_busy(q, qprom, proc):
    fds = q.sd1_count()
    proc.init({"lagProbe": 0.02})
    assert q.sd1_count() == fds + 1                    # the probe's fd on q's loop
    assert q.poll_until(lambda: _lag(q, qprom)[0] >= 1)   # a free loop answers
    n0, s0, _ = _lag(q, qprom)
    time.sleep(0.5)                                    # q's main thread busy: nothing polls
    n, s, outstanding = _lag(q, qprom)
    assert (n, s) == (n0, s0), "the probe cannot be answered while q is busy"
    assert outstanding >= 0.4, "the waiting probe is visible while q is busy"
    q.poll(0)                                          # q free again: one probe answered
    n, s, outstanding = _lag(q, qprom)
    assert n == n0 + 1, "never more than one probe outstanding"
    assert s - s0 >= 0.45 and outstanding == 0.0
    proc.restore()
    assert q.sd1_count() == fds


def test_lag_probe_off(q, qprom, proc):
    fds = q.sd1_count()
    proc.init({"lagProbe": 0})
    assert q.sd1_count() == fds


def test_logins_by_user_and_result(q, qprom, proc):
    proc.init({"lagProbe": 0})
    before = _series(q, qprom, "kdb_logins_total") if "kdb_logins_total" in qprom.call("qprom_meta", q.identity())["metric"] else {}
    for u, ok in (("alice", True), ("alice", True), ("mallory", False)):
        qprom.call("qprom_login", q.s(u), q.b(ok))
    s = _series(q, qprom, "kdb_logins_total")
    get = lambda u, r: s.get((("result", r), ("user", u)), 0) - before.get((("result", r), ("user", u)), 0)
    assert (get("alice", "accepted"), get("mallory", "refused"), get("alice", "refused")) == (2, 1, 0)
    with pytest.raises(QError, match=r"^prom: value must be a number \(short, int, long, real or float\)$"):
        qprom.call("qprom_login", q.s("u"), q.j(1))


def test_pw_wrapped_only_when_defined(q, qprom, proc):
    _, zs, _ = proc.init({"lagProbe": 0})
    assert ".z.pw" not in zs
    proc.restore()
    proc.z[".z.pw"] = q.string("user pw")
    _, zs, _ = proc.init({"lagProbe": 0})
    assert ".z.pw" in zs
