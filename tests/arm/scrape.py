#!/usr/bin/env python3
"""The x86 side of tests/arm/run.sh: runs the driver (tests/arm/driver.c, under qemu for
aarch64), answers its Pushgateway calls, scrapes its listener and judges the body.

    scrape.py --target TRIPLE --workdir DIR -- DRIVER_COMMAND... LIBQPROM.so

The driver gets LIBQPROM.so, DIR and the stub's URL as its arguments. Once it prints
"PORT <n>" its listener is up: the text format is scraped and must pass `promtool check
metrics` (exit 0: no problem at all) and prometheus_client's 0.0.4 parser, the
OpenMetrics format its OpenMetrics parser; both must hold the samples the driver made
(values set by the export checks) and qprom_build_info with this target. Then a line on
the driver's stdin lets it stop the listener and finish its own checks; its exit status
and the stub's record (one PUT and one DELETE for job arm, instance qemu) decide.
"""
import argparse
import http.server
import shutil
import subprocess
import sys
import threading
import urllib.request

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_txt

STARTUP_TIMEOUT = 300  # s: qemu runs the export checks before the listener starts


class Gateway(http.server.BaseHTTPRequestHandler):
    """A Pushgateway stand-in: records method, path and body, answers 200."""
    calls = []

    def _record(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8", "replace")
        Gateway.calls.append((self.command, self.path, body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_PUT = do_POST = do_DELETE = _record

    def log_message(self, *args):
        pass


def samples(families):
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("command", nargs="+")
    a = ap.parse_args()
    problems = []

    gw = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=gw.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{gw.server_address[1]}"

    drv = subprocess.Popen(a.command + [a.workdir, url], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True)
    port = None
    timer = threading.Timer(STARTUP_TIMEOUT, drv.kill)
    timer.start()
    for line in drv.stdout:
        print("  " + line, end="")
        if line.startswith("PORT "):
            port = int(line.split()[1])
            break
    timer.cancel()
    if port is None:
        drv.wait()
        print(f"scrape: the driver exited ({drv.returncode}) before its listener started")
        return 1

    base = f"http://127.0.0.1:{port}/metrics"
    try:
        text = urllib.request.urlopen(base, timeout=60).read().decode()
        req = urllib.request.Request(base, headers={"Accept": "application/openmetrics-text; version=1.0.0"})
        with urllib.request.urlopen(req, timeout=60) as r:
            om_type = r.headers.get("Content-Type", "")
            om = r.read().decode()
    except OSError as e:
        problems.append(f"scrape failed: {e}")
        text = om = om_type = ""

    if text:
        promtool = shutil.which("promtool")
        if not promtool:
            problems.append("promtool not found (scripts/deps.sh installs prometheus)")
        else:
            p = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=120)
            if p.returncode != 0:
                problems.append(f"promtool check metrics: exit {p.returncode}: {(p.stdout + p.stderr).decode().strip()}")
        want = {
            ("arm_requests_total", (("code", "200"), ("path", "/metrics"))): 2.0,
            ("arm_latency_seconds_count", ()): 4.0,
            ("arm_tp_messages_total", ()): 7.0,
        }
        for fmt, body, parse in (("text", text, parse_txt), ("openmetrics", om, parse_om)):
            try:
                got = samples(parse(body))
            except Exception as e:  # the parsers raise ValueError and others on bad input
                problems.append(f"{fmt}: the Python parser rejected the body: {e!r}")
                continue
            for key, v in want.items():
                if got.get(key) != v:
                    problems.append(f"{fmt}: {key[0]}{dict(key[1])} is {got.get(key)}, want {v}")
            polls = got.get(("arm_polls", ()))
            if not polls or polls < 1:
                problems.append(f"{fmt}: arm_polls is {polls}: the poll callback did not run before the scrape")
            info = [k for k in got if k[0] in ("qprom_build_info", "qprom_build_info_info")]
            if len(info) != 1 or dict(info[0][1]).get("target") != a.target:
                problems.append(f"{fmt}: qprom_build_info with target {a.target} not found: {info}")
        if "application/openmetrics-text" not in om_type:
            problems.append(f"openmetrics: Content-Type is {om_type!r}")

    drv.stdin.write("done\n")
    drv.stdin.flush()
    for line in drv.stdout:
        print("  " + line, end="")
    rc = drv.wait(timeout=300)
    if rc != 0:
        problems.append(f"driver exited {rc}")
    gw.shutdown()

    methods = sorted((m, p) for m, p, _ in Gateway.calls)
    want_calls = [("DELETE", "/metrics/job/arm/instance/qemu"), ("PUT", "/metrics/job/arm/instance/qemu")]
    if methods != want_calls:
        problems.append(f"Pushgateway stub got {methods}, want {want_calls}")
    put = [b for m, _, b in Gateway.calls if m == "PUT"]
    if put and 'arm_requests_total{path="/metrics",code="200"} 2' not in put[0]:
        problems.append("the pushed body lacks arm_requests_total")

    for p in problems:
        print(f"scrape: FAIL ({a.target}): {p}")
    if not problems:
        print(f"scrape: ok ({a.target}): exports checked, /metrics passed promtool and both parsers, push seen")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
