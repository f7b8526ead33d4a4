"""A real Prometheus (Debian's /usr/bin/prometheus, 2.42) run by the end-to-end tests
(test_e2e_prometheus.py, test_e2e_native.py), and its HTTP API.

Every wait polls Prometheus' API with a bound, servicing the stand-in host's event loop
(q.poll) between tries, so a poll function the listener asks for still runs."""
import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

PROMETHEUS = Path(os.environ.get("QPROM_PROMETHEUS", "/usr/bin/prometheus"))

skip_without_prometheus = pytest.mark.skipif(
    not PROMETHEUS.exists(), reason=f"{PROMETHEUS} missing (scripts/deps.sh installs Debian's prometheus)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dur(seconds: float) -> str:
    """A PromQL range duration (whole milliseconds: 2.x takes no fractions)."""
    return f"{max(1, round(seconds * 1000))}ms"


def scrape_config(targets, job, interval=1.0, timeout=1.0) -> str:
    """prometheus.yml scraping `targets` (host:port strings) as `job`."""
    ts = ", ".join(f"'{t}'" for t in targets)
    return ("global:\n"
            f"  scrape_interval: {dur(interval)}\n"
            f"  scrape_timeout: {dur(timeout)}\n"
            "scrape_configs:\n"
            f"  - job_name: {job}\n"
            "    static_configs:\n"
            f"      - targets: [{ts}]\n")


class PromAPI:
    """Prometheus' HTTP API; every wait services the host's event loop meanwhile."""

    def __init__(self, q, base, proc, log):
        self.q, self.base, self.proc, self.log = q, base, proc, log

    def _get(self, path, **params):
        url = f"{self.base}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status, r.read()

    def api(self, path, **params):
        try:
            _, body = self._get(path, **params)
        except urllib.error.HTTPError as e:   # 4xx: a bad query; show Prometheus' reason
            raise AssertionError(f"{path} {params}: {e.code} {e.read()[:500]!r}") from None
        doc = json.loads(body)
        assert doc.get("status") == "success", doc
        return doc["data"]

    def instant(self, expr, at=None):
        """An instant query's raw result list (float samples have "value", native
        histograms "histogram")."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self.api("/api/v1/query", **params)
        assert data["resultType"] == "vector", data
        return data["result"]

    def query(self, expr, at=None):
        """Instant vector of floats as [(labels, value)]."""
        return [(r["metric"], float(r["value"][1])) for r in self.instant(expr, at)]

    def scalar(self, expr, at=None):
        res = self.query(expr, at)
        assert len(res) == 1, f"{expr}: want one series, got {res}"
        return res[0][1]

    def wait(self, what, fn, timeout):
        """Calls fn() until it returns something truthy, polling the host's loop
        between tries; fails after `timeout` seconds with what and the last value."""
        end = time.monotonic() + timeout
        last = None
        while True:
            if self.q.hook_errors:   # the poll function (a q function in the host) failed
                first, self.q.hook_errors = self.q.hook_errors[0], []   # reported here, once
                pytest.fail(f"the poll function failed while waiting for {what} (a None "
                            f"pointer below = it was given (K)0, not (::)): {first}")
            if self.proc.poll() is not None:
                pytest.fail(f"prometheus exited ({self.proc.returncode}) while waiting for "
                            f"{what}:\n{self.log.read_text()[-3000:]}")
            try:
                last = fn()
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as e:
                last = e
            else:
                if last:
                    return last
            if time.monotonic() > end:
                pytest.fail(f"timed out after {timeout}s waiting for {what} (last: {last!r})\n"
                            f"prometheus log tail:\n{self.log.read_text()[-2000:]}")
            self.q.poll(50)


def run_prometheus(q, workdir, cfg, port, flags=()):
    """Generator for a fixture: a real Prometheus on 127.0.0.1:port with the config file
    `cfg` and extra command-line `flags`, its log and TSDB in `workdir`; yields its API
    once ready; terminated (and its TSDB removed) afterwards, also on failure."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "prometheus.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(PROMETHEUS), f"--config.file={cfg}", f"--storage.tsdb.path={workdir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn", *flags],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        api = PromAPI(q, f"http://127.0.0.1:{port}", proc, log)
        api.wait("/-/ready", lambda: api._get("/-/ready")[0] == 200, timeout=20)
        yield api
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(workdir / "tsdb", ignore_errors=True)


@contextlib.contextmanager
def prometheus_server(q, workdir, cfg_text, flags=()):
    """run_prometheus as a context manager, on a free port, with the config text
    `cfg_text` written to workdir/prometheus.yml."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "prometheus.yml"
    cfg.write_text(cfg_text)
    yield from run_prometheus(q, workdir, cfg, free_port(), flags)
