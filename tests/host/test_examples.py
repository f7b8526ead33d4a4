"""The operations examples (examples/prometheus.yml, alerts.yml, alerts_test.yml,
grafana-dashboard.json) against the real tools.

* promtool accepts the Prometheus config and the rules, and the rules' unit tests pass.
* Live: the default metrics (standard naming) are registered, qprom's listener runs in the
  stand-in q host with a poll function that feeds them (requests on every handler, some
  failing, connections, .Q.w and output-queue samples), and a real Prometheus scrapes it
  every second with examples/alerts.yml loaded. Then every PromQL expression of the
  Grafana dashboard, with its variables substituted, must evaluate without error and
  return data (the native-histogram panels: in test_e2e_native.py, against a Prometheus
  that ingests native histograms); every alert rule must load, evaluate healthily, and
  its expression must evaluate through /api/v1/query.

The registry is process-global and shared with the other modules: init (qprom_init) with
standard naming is idempotent, and the queries only ask for data, never exact values.
"""
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from qhost import QError
from promserver import PROMETHEUS, free_port as _free_port, run_prometheus

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
Q_EPOCH = 946684800  # 2000.01.01 in unix seconds
JOB = "kdb"           # the job name alerts.yml's KdbProcessDown selects
RATE = "5s"           # $__rate_interval: 5 scrapes at 1 s
# Grafana's variables -> values for a direct query
VARIABLES = {"$__rate_interval": RATE, "$__interval": "1s", "$__range": "1m",
             "$job": ".*", "$instance": ".*", "$role": ".*"}

needs_promtool = pytest.mark.skipif(not Path(PROMTOOL).exists(),
                                    reason="promtool missing (Debian's prometheus package)")


def _promtool(*args):
    r = subprocess.run([PROMTOOL, *args], cwd=EXAMPLES, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, f"promtool {' '.join(args)}:\n{r.stdout}{r.stderr}"
    return r.stdout + r.stderr


@needs_promtool
def test_promtool_check_config():
    assert "SUCCESS" in _promtool("check", "config", "prometheus.yml")


@needs_promtool
def test_promtool_check_rules():
    out = _promtool("check", "rules", "alerts.yml")
    assert "SUCCESS: 11 rules found" in out, out


@needs_promtool
def test_promtool_test_rules():
    assert "SUCCESS" in _promtool("test", "rules", "alerts_test.yml")


NATIVE_PANEL = "(native histogram)"   # in the title of panels that need native histograms


def dashboard_exprs(native=None):
    """(panel title, expr) of every target in the dashboard, rows' nested panels too.
    native: True, only the panels whose title says they need native histograms (their
    live check is in test_e2e_native.py, with a Prometheus that ingests them); False,
    only the others; None, all."""
    doc = json.loads((EXAMPLES / "grafana-dashboard.json").read_text())
    out = []

    def walk(panels):
        for p in panels:
            walk(p.get("panels", []))
            if native is not None and (NATIVE_PANEL in p["title"]) != native:
                continue
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append((p["title"], t["expr"]))
    walk(doc["panels"])
    return out


def substitute(expr):
    for var in sorted(VARIABLES, key=len, reverse=True):   # $__rate_interval before $__range
        expr = expr.replace(var, VARIABLES[var])
    left = re.findall(r"\$\{?\w+", expr)
    assert not left, f"unsubstituted Grafana variables {left} in {expr}"
    return expr


def test_dashboard_is_grafana_json():
    doc = json.loads((EXAMPLES / "grafana-dashboard.json").read_text())
    assert 36 <= doc["schemaVersion"] <= 39
    names = [v["name"] for v in doc["templating"]["list"]]
    assert names[0] == "datasource" and doc["templating"]["list"][0]["type"] == "datasource"
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    exprs = dashboard_exprs()
    assert len(exprs) >= 20
    for _, e in exprs:
        substitute(e)
    assert dashboard_exprs(native=True), f"no panel titled ...{NATIVE_PANEL}"


# ---------------------------------------------------------------------------- live

def _q_now_ns():
    return time.time_ns() - Q_EPOCH * 10**9


@pytest.fixture
def fed_listener(q, qprom):
    """.prom.init as prom.q calls it (default metrics, standard naming, the lag probe every
    0.2 s) with the listener on 127.0.0.1:<free port>, and a poll function that feeds every
    default family on q's main thread: requests, connections with who they are, memory,
    output queues per handle, logins."""
    from test_lifecycle import Proc
    proc = Proc(q, qprom)
    state = {"runs": 0}
    w_keys = ["used", "heap", "peak", "wmax", "mmap", "mphy", "syms", "symw"]

    def on_poll(_x):
        state["runs"] += 1
        n = state["runs"]
        now = _q_now_ns()
        for i, h in enumerate(["pg", "ps", "ph", "pp", "ws", "ts"]):
            for j in range(3):   # 3 calls per handler and poll, 1 ms .. 30 ms ago
                t0 = q.p(now - (1 + 10 * j + i) * 1_000_000)
                qprom.call("qprom_request", q.s(h), t0, q.b(j == 0 and h == "pg"))
        for ev, h in [("po", 100 + 2 * n), ("po", 101 + 2 * n), ("pc", 101 + 2 * n), ("wo", 7), ("wc", 7)]:
            qprom.call("qprom_peer", q.s(ev), q.i(h), q.s("rdb" if h % 2 == 0 else "gw"), q.i(167772161))
        w = q.dict(q.syms(w_keys), q.vec("j", [5_000_000 + 1000 * n, 64 << 20, 64 << 20,
                                                1 << 30, 0, 16 << 30, 1000 + n, 50_000]))
        queues = q.dict(q.vec("i", [100 + 2 * n, 5]), q.vec("j", [123_456, 0]))
        qprom.call("qprom_sample", w, queues, q.vec("j", [2, 1]))
        qprom.call("qprom_login", q.s("alice"), q.b(True))
        qprom.call("qprom_login", q.s("mallory"), q.b(False))
        return None

    q.define("examples.on_poll", on_poll)
    cfg = q.dict(q.syms(["port", "bind", "pollTimeout", "timeout", "lagProbe"]),
                 q.knk(q.j(0), q.s("127.0.0.1"), q.f(0.4), q.f(5.0), q.f(0.2)))
    r, _, _ = proc.init(cfg, pollfn=q.lambda_("examples.on_poll"))
    port = r.py()["port"]
    try:
        yield {"port": port, "state": state}
    finally:
        proc.restore()


@pytest.fixture
def prometheus_with_rules(q, fed_listener, tmp_path):
    if not PROMETHEUS.exists():
        pytest.skip(f"{PROMETHEUS} missing (scripts/deps.sh installs Debian's prometheus)")
    port = _free_port()
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  scrape_timeout: 1s\n"
        "  evaluation_interval: 1s\n"
        f"rule_files: ['{EXAMPLES / 'alerts.yml'}']\n"
        "scrape_configs:\n"
        f"  - job_name: {JOB}\n"
        "    static_configs:\n"
        f"      - targets: ['127.0.0.1:{fed_listener['port']}']\n"
        "        labels: {role: rdb}\n")
    yield from run_prometheus(q, tmp_path, cfg, port)


def _pause(api, seconds):
    """Let time pass while servicing the host's event loop (so scrapes get their poll)."""
    end = time.monotonic() + seconds
    api.wait(f"{seconds}s to pass", lambda: time.monotonic() >= end, timeout=seconds + 5)


def test_dashboard_and_alert_queries_on_live_data(q, fed_listener, prometheus_with_rules):
    api = prometheus_with_rules
    api.wait("a successful scrape", lambda: api.query(f'up{{job="{JOB}"}} == 1'), timeout=15)

    # -- every dashboard expression returns data once a rate window holds >= 2 samples
    exprs = [(title, substitute(e)) for title, e in dashboard_exprs(native=False)]
    deadline = time.monotonic() + 25
    while True:
        empty = []
        for title, e in exprs:
            if not api.query(e):   # an invalid query fails here, with Prometheus' reason
                empty.append(f"{title}: {e}")
            q.poll(0)              # keep scrapes from timing out on the poll meanwhile
        if not empty:
            break
        if time.monotonic() > deadline:
            pytest.fail("dashboard expressions without data:\n  " + "\n  ".join(empty))
        _pause(api, 0.5)
    assert fed_listener["state"]["runs"] >= 2

    # -- every alert rule loaded, evaluated without error, and its expression queries
    def rules():
        groups = api.api("/api/v1/rules")["groups"]
        return [r for g in groups for r in g["rules"]]

    def all_evaluated():
        rs = rules()
        return rs if rs and all(not r["lastEvaluation"].startswith("0001") for r in rs) else None

    rs = api.wait("every rule evaluated", all_evaluated, timeout=15)
    names = {r["name"] for r in rs}
    assert names == {"KdbProcessDown", "KdbHeapNearLimit", "KdbHeapHighNoLimit",
                     "KdbHandlerErrorRatioHigh", "KdbHandlerSlowP99", "QpromPollTimeouts",
                     "KdbOutputQueueGrowing", "KdbSlowSubscriber", "KdbEventLoopStalled",
                     "KdbLoginRefusalsBurst", "QpromSeriesLimitHit"}, names
    for r in rs:
        assert r["type"] == "alerting" and r["health"] == "ok", r
        api.query(r["query"])
        q.poll(0)
    # the process is up, its heap (64 MiB) is far from -w (1 GiB) and physical (16 GiB),
    # and no family has refused a series
    state = {r["name"]: r["state"] for r in rs}
    for name in ("KdbProcessDown", "KdbHeapNearLimit", "KdbHeapHighNoLimit", "QpromSeriesLimitHit"):
        assert state[name] == "inactive", (name, state)


def test_series_limit_alert_names_the_flooded_family(q, qprom, fed_listener, prometheus_with_rules):
    """A family with a series limit of 1 gets its hits series (at 0) at the next scrape;
    3 refused label values later QpromSeriesLimitHit fires for that family, not another."""
    api, flood = prometheus_with_rules, "examples_flood_total"
    qprom.call("qprom_create", q.dict(q.syms(["name", "type", "labels", "limit"]),
                                      q.knk(flood, "counter", ["tenant"], 1)))
    try:
        sel = f'qprom_series_limit_hits_total{{job="{JOB}", family="{flood}"}}'
        api.wait("the family's hits series at 0", lambda: api.query(f"{sel} == 0"), timeout=15)
        qprom.call("qprom_inc", flood, "t0", 1)
        for t in ("t1", "t2", "t3"):
            with pytest.raises(QError, match="^prom: too many series$"):
                qprom.call("qprom_inc", flood, t, 1)
        api.wait("3 hits scraped", lambda: api.query(f"{sel} == 3"), timeout=15)
        firing = api.wait("QpromSeriesLimitHit firing", lambda: api.query(
            'ALERTS{alertname="QpromSeriesLimitHit", alertstate="firing"}'), timeout=15)
        assert [f[0]["family"] for f in firing] == [flood], firing
        assert firing[0][0]["role"] == "rdb", firing
    finally:
        qprom.call("qprom_del", flood, None)
