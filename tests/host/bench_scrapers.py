#!/usr/bin/env python3
"""1,000 concurrent scrapers against qprom's listener: latency percentiles and errors.
A benchmark, not a test: it prints numbers and asserts nothing about speed.

    make bench-http                 # runs this after bench_http.py
    target/venv/bin/python tests/host/bench_scrapers.py [--clients 1000] [--series 10000]
        [--profile om-gzip|text] [--rounds 1] [--timeout 60]

The listener runs in listener_child.py (the real libqprom.so in the stand-in q host, a
child process with q's SIGPIPE disposition, no poll function) holding --series series
(counters, every 10th a histogram: ~1.4 MB as text, ~240 KB as OpenMetrics+gzip). For
each listener configuration below, --clients asyncio clients in this process are
released at once; each opens its own connection, sends GET /metrics (profile om-gzip:
Prometheus 2's Accept header, Accept-Encoding: gzip; profile text: no headers) and reads
to EOF. Latency is from the client's release to the last byte (connect, any kernel
accept-queue wait and SYN retries included).

Configurations: the defaults (4 workers, maxInFlight 3: beyond that, 503 at once);
maxInFlight 0 (no limit but the workers); and maxConnections 1024 (with and without
maxInFlight 0) where the listener knows that key (otherwise reported as refused).

Reported per configuration: counts of 200, 503, other statuses and connection errors
(by kind: reset, timeout, closed without a response, truncated body, refused), wall
time, and p50/p90/p99/max latency overall and per status. Caveat: the clients, the
listener and anything else running share this machine's CPUs (count in the header),
and one Python process drives all the clients.
"""
from __future__ import annotations

import argparse
import collections
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from listener_child import PROM_HEADERS, ListenerChild, pct, raise_nofile, scrape, scrape_many  # noqa: E402

PROFILES = {"om-gzip": PROM_HEADERS, "text": {}}
CONFIGS = [
    ("default", {}),
    ("maxInFlight 0", {"maxInFlight": 0}),
    ("maxConnections 1024", {"maxConnections": 1024}),
    ("maxConnections 1024, maxInFlight 0", {"maxConnections": 1024, "maxInFlight": 0}),
]


def ms(x):
    return f"{x * 1e3:8.1f}" if x == x else f"{'-':>8}"


def report(name, res, wall):
    ok = collections.Counter()
    errors = collections.Counter()
    lat = collections.defaultdict(list)
    for r in res:
        if r.error is None:
            ok[r.status] += 1
            lat[r.status].append(r.seconds)
            lat["all responses"].append(r.seconds)
        else:
            errors[r.error] += 1
            lat["errors"].append(r.seconds)
    other = sum(v for k, v in ok.items() if k not in (200, 503))
    print(f"\n{name}: {len(res)} clients in {wall:.2f} s wall: 200 {ok[200]}, 503 {ok[503]}, "
          f"other status {other}, connection errors {sum(errors.values())}"
          + (f" {dict(errors)}" if errors else ""))
    print(f"  {'':14} {'n':>5} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    keys = ["all responses"] + sorted((k for k in lat if isinstance(k, int))) + ["errors"]
    for k in keys:
        xs = lat.get(k, [])
        if not xs:
            continue
        label = k if isinstance(k, str) else f"status {k}"
        print(f"  {label:14} {len(xs):5d} {ms(pct(xs, 50))} {ms(pct(xs, 90))} {ms(pct(xs, 99))} "
              f"{ms(max(xs))}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--profile", choices=list(PROFILES), default="om-gzip")
    ap.add_argument("--rounds", type=int, default=1, help="runs per configuration")
    ap.add_argument("--timeout", type=float, default=60.0, help="per client, seconds")
    a = ap.parse_args()
    raise_nofile(a.clients + 512)
    t0 = time.monotonic()
    headers = PROFILES[a.profile]
    with ListenerChild({}, series=a.series) as child:
        if child.error:
            print(f"bench-scrapers: qprom_start failed: {child.error}")
            return 1
        body = scrape(child.port, headers=headers)
        print(f"bench-scrapers: {a.clients} concurrent scrapers, {child.series} series "
              f"({child.body_bytes} bytes as text; {len(body.body)} bytes per {a.profile} "
              f"response), {os.cpu_count()} CPUs shared by clients and listener, "
              f"so={os.environ.get('QPROM_SO', 'target/l64/libqprom.so')}", flush=True)
        for name, cfg in CONFIGS:
            r = child.restart({"timeout": 10.0, **cfg})
            if r.get("error"):
                print(f"\n{name}: refused by qprom_start ({r['error']}): skipped")
                continue
            for i in range(a.rounds):
                base = {"threads": child.threads(), "fds": child.fds()}
                res, wall = scrape_many(child.port, a.clients, headers, timeout=a.timeout)
                report(name + (f" (round {i + 1})" if a.rounds > 1 else ""), res, wall)
                print(f"  child: threads {base['threads']} -> {child.threads()}, fds "
                      f"{base['fds']} -> {child.fds()} right after; alive {child.alive()}")
        rc = child.close()
    print(f"\nbench-scrapers: {time.monotonic() - t0:.0f} s; child exit status {rc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
