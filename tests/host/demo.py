#!/usr/bin/env python3
"""qprom demo: the real libqprom.so in the stand-in q host, under synthetic load, serving
its metrics on its own listener until Ctrl-C.

    make demo                                      # builds the .so and the host first
    DEMO_PORT=9700 DEMO_BIND=127.0.0.1 target/venv/bin/python tests/host/demo.py

Environment: DEMO_PORT (default 9612), DEMO_BIND (default 0.0.0.0), DEMO_SECONDS (stop
after that many seconds; default: run until Ctrl-C), QPROM_SO (the extension, default
target/l64/libqprom.so).

The host's main thread plays q's: it updates counters, gauges, a histogram and a summary
(with labels) in a loop, and between updates services q's event loop (q.poll), which is
where the poll function runs before each scrape (it bumps demo_polls_total and sets
demo_last_poll_timestamp_seconds). process_* metrics and the listener's own qprom_*
metrics come with the listener.

Native histograms and exemplars are on (docs/histograms.md): demo_request_duration_seconds
has native buckets beside its classic ones and an exemplar (trace_id) per observation, and
.prom.init's nativeHistograms and exemplars make kdb_request_duration_seconds native with
the user and function (IPC) or path (HTTP) of each request as its exemplar. A Prometheus
with --enable-feature=native-histograms,exemplar-storage gets them (protobuf); the classic
buckets and the exemplars also show in OpenMetrics (the curl lines printed at start).
"""
import math
import os
import random
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from qhost import Host  # noqa: E402

PORT = int(os.environ.get("DEMO_PORT", "9612"))
BIND = os.environ.get("DEMO_BIND", "0.0.0.0")
SECONDS = float(os.environ.get("DEMO_SECONDS", "0")) or math.inf

METHODS = ["GET", "GET", "GET", "POST", "DELETE"]
PATHS = ["/api/trades", "/api/quotes", "/api/orders", "/health"]
TABLES = ["trade", "quote", "order"]
QUEUES = ["ingest", "replay"]
FUNCTIONS = ["getTrades", "getQuotes", ".u.upd"]
USERS = ["alice", "bob", "rdb1"]
PROTOBUF = "Accept: application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"


def main():
    q = Host.get()
    ext = q.load()
    call = ext.call
    syms = q.syms

    call("qprom_create", {"name": "demo_requests_total", "type": "counter",
                          "help": "Requests handled, by method, path and status code.",
                          "labels": syms(["method", "path", "code"])})
    call("qprom_create", {"name": "demo_transfer_bytes_total", "type": "counter",
                          "help": "Bytes moved, by direction.", "unit": "bytes",
                          "labels": syms(["direction"])})
    call("qprom_create", {"name": "demo_request_duration_seconds", "type": "histogram",
                          "help": "Request latency.", "unit": "seconds",
                          "labels": syms(["method"]),
                          "buckets": q.vec("f", [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]),
                          "nativeFactor": 1.1})   # native too: schema 3, about 9% per bucket
    call("qprom_create", {"name": "demo_query_seconds", "type": "summary",
                          "help": "Query time by table.", "unit": "seconds",
                          "labels": syms(["table"]),
                          "quantiles": q.vec("f", [0.5, 0.9, 0.99])})
    call("qprom_create", {"name": "demo_queue_depth", "type": "gauge",
                          "help": "Messages waiting, by queue.", "labels": syms(["queue"])})
    call("qprom_create", {"name": "demo_connections", "type": "gauge",
                          "help": "Open client connections."})
    call("qprom_create", {"name": "demo_build_info", "type": "info",
                          "help": "Build of this (simulated) q process.",
                          "labels": syms(["version", "host"])})
    call("qprom_series", "demo_build_info", syms(["4.1", "demo"]), None, None)
    call("qprom_create", {"name": "demo_polls_total", "type": "counter",
                          "help": "Times the poll function ran (once per scrape)."})
    call("qprom_create", {"name": "demo_last_poll_timestamp_seconds", "type": "gauge",
                          "help": "When the poll function last ran (unix time).",
                          "unit": "seconds"})

    # .prom.init as prom.q calls it: the default kdb+ metrics, the lag probe of q's event
    # loop (this loop: q.poll below), per-connection output queues and logins, and the
    # listener. They are fed below with synthetic handler calls (what the wrapped
    # .z.pg/.z.ps/.z.ph would record) and, per scrape, subscribers and logins.
    from test_lifecycle import Proc
    proc = Proc(q, ext)
    q_epoch_ns = 946684800 * 10**9
    handlers = {"pg": 0.004, "ps": 0.001, "ph": 0.02}   # typical seconds per call
    subscribers = {10: ("rdb1", 167772171), 11: ("rdb2", 167772172), 12: ("cep", 167772173)}
    backlog = {h: 0 for h in subscribers}

    def on_poll(_x):
        # what `.prom.on_poll` would do in q: refresh values just before a scrape
        call("qprom_inc", "demo_polls_total", None, 1)
        call("qprom_set", "demo_last_poll_timestamp_seconds", None, time.time())
        call("qprom_set", "demo_connections", None, float(random.randint(5, 40)))
        # what the default on_poll reads from .Q.w[] and sum each .z.W: rdb2 is slow
        for h in backlog:
            backlog[h] = max(0, backlog[h] + (random.randint(0, 400_000) if h == 11 else random.randint(-2000, 2000)))
        w = q.dict(syms(["used", "heap", "peak", "wmax", "mmap", "mphy", "syms", "symw"]),
                   q.vec("j", [40 << 20, 64 << 20, 64 << 20, 0, 0, 16 << 30, 12000, 600_000]))
        call("qprom_sample", w, q.dict(q.vec("i", list(backlog)), q.vec("j", list(backlog.values()))), None)
        call("qprom_login", q.s(random.choice(["alice", "bob"])), q.b(True))
        if random.random() < 0.2:
            call("qprom_login", q.s("mallory"), q.b(False))

    q.define("demo.on_poll", on_poll)
    cfg = q.dict(syms(["port", "bind", "processMetrics", "pollTimeout", "nativeHistograms", "exemplars"]),
                 q.knk(q.j(PORT), q.s(BIND), q.b(True), q.f(1.0), q.b(True), q.b(True)))
    r, _, _ = proc.init(cfg, pollfn=q.lambda_("demo.on_poll"))
    port, middleware = r.py()["port"], r.py()["mw"]
    for h, (u, a) in subscribers.items():   # the subscribers connect (what .z.po sees)
        call("qprom_peer", q.s("po"), q.i(h), q.s(u), q.i(a))
    host = "localhost" if BIND in ("0.0.0.0", "::") else BIND
    print(f"qprom demo: listening on {BIND}:{port}, synthetic load running (Ctrl-C to stop)\n"
          f"  curl -s http://{host}:{port}/metrics\n"
          f"  curl -s -H 'Accept: application/openmetrics-text' http://{host}:{port}/metrics\n"
          f"  curl -s --compressed http://{host}:{port}/metrics | grep ^demo_\n"
          f"  curl -s -H 'Accept: application/openmetrics-text' http://{host}:{port}/metrics | grep ' # {{'   # exemplars\n"
          f"  curl -s -H '{PROTOBUF}' http://{host}:{port}/metrics | wc -c   # protobuf, as Prometheus "
          f"with --enable-feature=native-histograms asks", flush=True)

    def on_term(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    depth = {qn: 0.0 for qn in QUEUES}
    reported = False
    end = time.monotonic() + SECONDS
    try:
        while time.monotonic() < end:
            for _ in range(random.randint(1, 5)):
                method, path = random.choice(METHODS), random.choice(PATHS)
                code = random.choices(["200", "404", "500"], [95, 4, 1])[0]
                call("qprom_inc", "demo_requests_total", syms([method, path, code]), 1)
                call("qprom_obs_ex", "demo_request_duration_seconds", syms([method]),
                     random.lognormvariate(math.log(0.03), 1.0),
                     q.dict(syms(["trace_id"]), q.knk(q.string(f"{random.getrandbits(64):016x}"))))
                call("qprom_inc", "demo_transfer_bytes_total", syms(["in"]),
                     random.randint(200, 2000))
                call("qprom_inc", "demo_transfer_bytes_total", syms(["out"]),
                     random.randint(500, 50000))
            h = random.choice(list(handlers))
            took = random.lognormvariate(math.log(handlers[h]), 0.8)
            t0, failed = q.p(time.time_ns() - q_epoch_ns - int(took * 1e9)), q.b(random.random() < 0.01)
            if middleware:   # what prom.q's after_X calls when init turned the middleware on
                msg = (q.knk(q.s(random.choice(FUNCTIONS)), q.j(5)) if h != "ph" else
                       q.knk(q.string(random.choice(PATHS)[1:]), q.dict(syms(["Host"]), q.knk(q.string("demo")))))
                call("qprom_request_ex", q.s(h), t0, failed, msg, q.string("HTTP/1.1 200 OK\r\n\r\n"),
                     q.s(random.choice(USERS)), msg)
            else:
                call("qprom_request", q.s(h), t0, failed)
            call("qprom_obs", "demo_query_seconds", syms([random.choice(TABLES)]),
                 random.expovariate(1 / 0.02))
            for qn in QUEUES:
                depth[qn] = max(0.0, depth[qn] + random.uniform(-3, 3.2))
                call("qprom_set", "demo_queue_depth", syms([qn]), depth[qn])
            q.poll(20)   # q's event loop: runs the poll function when a scrape asks
            if q.hook_errors:
                if not reported:
                    print(f"demo: the poll function failed (shown once):\n{q.hook_errors[0]}",
                          file=sys.stderr, flush=True)
                    reported = True
                q.hook_errors.clear()
    except KeyboardInterrupt:
        pass
    finally:
        proc.restore()
        q.undefine_all()
        print("\nqprom demo: stopped", flush=True)


if __name__ == "__main__":
    main()
