"""End to end: a real Prometheus (Debian's /usr/bin/prometheus) scrapes the listener that
qprom_start runs inside the stand-in q host, and what it stored is checked through its
HTTP API.

What is proved, and how:

* up == 1, and the counter, the gauge and the histogram hold what the host put in them
  (histogram_quantile over our buckets gives the exact value linear interpolation must).
* The scrapes used OpenMetrics, shown three independent ways:
  1. `e2e_requests_created{kind="a"}` is in the TSDB. Only the OpenMetrics encoder writes
     `_created` lines (src/expo/mod.rs, `created()` is called only when `om`), and
     Prometheus 2.x ingests them from OpenMetrics as ordinary samples (CT-skipping only
     exists behind a feature flag in much later versions). Its value must be the series'
     creation time, taken around qprom_inc.
  2. `scrape_samples_scraped` equals the number of sample lines in our OpenMetrics
     rendering (qprom_render `openmetrics) and differs from the text rendering's count
     (the series set is fixed for the whole test, so the counts are stable).
  3. Target metadata carries the histogram's `# UNIT seconds`, which only OpenMetrics has.
* The poll function ran on the host's main thread: it sets the gauge e2e_poll_runs to the
  number of times it ran, and Prometheus sees a value >= 1.
* With the main thread blocked (no q.poll) for ~4 scrape intervals, every scrape in that
  window still succeeds (min_over_time(up) == 1, at least 3 scrapes, each lasting about
  pollTimeout and well under the scrape timeout), the values served are the last ones
  (e2e_poll_runs frozen), and qprom_poll_timeouts_total rises, read through the API.

Waiting is bounded polling of Prometheus' API while servicing the host's event loop; the
only deliberate pause is the blocked window itself, which is the thing under test.
"""
import time

import pytest

from promserver import dur as _dur, prometheus_server, scrape_config, skip_without_prometheus

SCRAPE_INTERVAL = 1.0      # s
SCRAPE_TIMEOUT = 1.0       # s; Prometheus sends it as X-Prometheus-Scrape-Timeout-Seconds
POLL_TIMEOUT = 0.2         # s; the listener also caps it at half the scrape timeout
BLOCK = 4.5                # s the main thread stays blocked: ~4 scrape intervals
JOB = "qprom"

BUCKETS = [1.0, 2.0, 4.0, 8.0]
# per bucket: 2 in (0,1], 2 in (1,2], 4 in (2,4], 2 in (4,8]; cumulative 2 4 8 10
OBSERVATIONS = [0.5, 0.75, 1.5, 1.75, 2.5, 3.0, 3.5, 3.75, 5.0, 7.0]
# histogram_quantile(0.5): rank 5 falls in (2,4] (cumulative 4 before, 4 inside):
#   2 + (4-2) * (5-4)/4 = 2.5;   quantile 0.9: rank 9 in (4,8]: 4 + 4 * (9-8)/2 = 6.0
QUANTILES = {0.5: 2.5, 0.9: 6.0}
COUNTER_VALUE = 7
GAUGE_VALUE = -3.25


pytestmark = skip_without_prometheus


@pytest.fixture
def listener(q, qprom):
    """Metrics with known values, and the listener on 127.0.0.1:<free port> with a poll
    function; stopped at teardown whatever happened."""
    state = {"runs": 0, "args": []}

    def on_poll(x):
        # q calls it as f[::]; it sets a gauge from q's main thread
        state["args"].append(x)
        state["runs"] += 1
        qprom.call("qprom_set", "e2e_poll_runs", None, float(state["runs"]))
        return None

    q.define("e2e.on_poll", on_poll)
    qprom.call("qprom_create", {"name": "e2e_requests_total", "type": "counter",
                                "help": "Requests.", "labels": q.syms(["kind"])})
    qprom.call("qprom_create", {"name": "e2e_temperature", "type": "gauge", "help": "T."})
    qprom.call("qprom_create", {"name": "e2e_poll_runs", "type": "gauge",
                                "help": "Times the poll function ran."})
    qprom.call("qprom_create", {"name": "e2e_latency_seconds", "type": "histogram",
                                "help": "Latency.", "unit": "seconds",
                                "buckets": q.vec("f", BUCKETS)})
    t0 = time.time()
    qprom.call("qprom_inc", "e2e_requests_total", q.syms(["a"]), COUNTER_VALUE)
    t1 = time.time()
    qprom.call("qprom_set", "e2e_temperature", None, GAUGE_VALUE)
    qprom.call("qprom_obs", "e2e_latency_seconds", None, q.vec("f", OBSERVATIONS))

    cfg = q.dict(q.syms(["port", "bind", "pollTimeout", "timeout"]),
                 q.knk(q.j(0), q.s("127.0.0.1"), q.f(POLL_TIMEOUT), q.f(5.0)))
    # the listener keeps a reference to the function (r1), so the refcount check is off
    port = qprom.call("qprom_start", cfg, q.lambda_("e2e.on_poll"), check_refs=False)
    try:
        assert isinstance(port, int) and port > 0
        yield {"port": port, "state": state, "created": (t0, t1)}
    finally:
        qprom.call("qprom_stop", None)


@pytest.fixture
def prometheus(q, listener, tmp_path):
    cfg = scrape_config([f"127.0.0.1:{listener['port']}"], JOB, SCRAPE_INTERVAL, SCRAPE_TIMEOUT)
    with prometheus_server(q, tmp_path, cfg) as api:
        yield api


def _sample_lines(text: bytes) -> int:
    return sum(1 for ln in text.decode().split("\n") if ln and not ln.startswith("#"))


def test_prometheus_scrapes_the_listener(q, qprom, listener, prometheus):
    api = prometheus
    sel = f'{{job="{JOB}"}}'

    # -- first scrape stored ------------------------------------------------------
    api.wait("a successful scrape", lambda: api.query(f"up{sel} == 1"), timeout=15)
    assert api.scalar(f"up{sel}") == 1
    # the poll function ran on the main thread before a scrape, and that scrape shows it
    api.wait("e2e_poll_runs >= 1", lambda: api.query(f"e2e_poll_runs{sel} >= 1"), timeout=10)
    assert listener["state"]["runs"] >= 1
    assert all(a is None for a in listener["state"]["args"]), \
        f"the poll function must get (::), got {listener['state']['args'][:3]}"

    # -- values ---------------------------------------------------------------------
    assert api.scalar(f'e2e_requests_total{{job="{JOB}",kind="a"}}') == COUNTER_VALUE
    assert api.scalar(f"e2e_temperature{sel}") == GAUGE_VALUE
    assert api.scalar(f"e2e_latency_seconds_count{sel}") == len(OBSERVATIONS)
    assert api.scalar(f"e2e_latency_seconds_sum{sel}") == sum(OBSERVATIONS)
    for phi, want in QUANTILES.items():
        got = api.scalar(f"histogram_quantile({phi}, e2e_latency_seconds_bucket{sel})")
        assert got == pytest.approx(want, abs=1e-12), f"quantile {phi}"
    buckets = {m["le"]: v for m, v in api.query(f"e2e_latency_seconds_bucket{sel}")}
    assert {float(le): v for le, v in buckets.items()} == {1.0: 2, 2.0: 4, 4.0: 8, 8.0: 10,
                                                           float("inf"): 10}

    # -- the format was OpenMetrics -------------------------------------------------
    # 1. _created, only written by the OpenMetrics encoder
    t0, t1 = listener["created"]
    created = api.scalar(f'e2e_requests_created{{job="{JOB}",kind="a"}}')
    assert t0 - 0.001 <= created <= t1 + 0.001, (t0, created, t1)
    # 2. the sample count is that of our OpenMetrics rendering, not the text one's
    om = _sample_lines(qprom.call("qprom_render", "openmetrics"))
    text = _sample_lines(qprom.call("qprom_render", "text"))
    assert om != text
    assert api.scalar(f"scrape_samples_scraped{sel}") == om, f"text would be {text}"
    # 3. # UNIT is only in OpenMetrics
    meta = api.api("/api/v1/targets/metadata", metric="e2e_latency_seconds",
                   match_target=sel)
    assert [m.get("unit") for m in meta] == ["seconds"], meta

    # -- the main thread blocked: scrapes still succeed, with the last values ------
    timeouts_before = api.scalar(f"qprom_poll_timeouts_total{sel}")
    runs_at_block = listener["state"]["runs"]
    q.poll(0)
    t_block = time.time()
    time.sleep(BLOCK)   # the host's main thread is busy: the event loop is not serviced
    t_resume = time.time()
    q.poll(0)           # runs the callback the scrapes left pending
    # every scrape that started in the window is stored once one starting later is
    api.wait("a scrape after the blocked window",
             lambda: api.query(f"timestamp(up{sel}) > {t_resume + 0.05:.3f}"), timeout=10)
    window = _dur(t_resume - t_block)
    n = api.scalar(f"count_over_time(up{sel}[{window}])", at=t_resume)
    assert n >= 3, f"only {n} scrapes while blocked"
    assert api.scalar(f"min_over_time(up{sel}[{window}])", at=t_resume) == 1
    # those scrapes waited about pollTimeout for the poll, and no longer
    slowest = api.scalar(f"max_over_time(scrape_duration_seconds{sel}[{window}])", at=t_resume)
    assert POLL_TIMEOUT * 0.9 <= slowest < SCRAPE_TIMEOUT * 0.75, slowest
    # the poll function did not run: the value served is the one from before the block
    # (the window's last pollTimeout + margin excluded: a scrape started then completes
    # after the resume, with a fresh poll)
    tail = t_resume - POLL_TIMEOUT - 0.3
    frozen = f"[{_dur(tail - t_block)}]"
    assert api.scalar(f"max_over_time(e2e_poll_runs{sel}{frozen})", at=tail) == runs_at_block
    # the listener counted the timeouts; read after resuming, through Prometheus
    api.wait("qprom_poll_timeouts_total to rise by >= 3",
             lambda: api.scalar(f"qprom_poll_timeouts_total{sel}") >= timeouts_before + 3,
             timeout=10)
    assert api.scalar(f"up{sel}") == 1
    # and polling works again
    api.wait("the poll function to run again",
             lambda: api.query(f"e2e_poll_runs{sel} > {runs_at_block}"), timeout=10)
