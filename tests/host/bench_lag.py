"""What the event-loop lag probe costs q (make bench): the host's main thread plays q's,
servicing its event loop for a few seconds with the probe at a fast interval, and again
with the probe off; the difference in the main thread's CPU time per probe, times 3600,
is what the default 1 s probe costs q's main thread per hour. The probe thread's own
cost (not q's) is shown beside it. An upper bound: the host's Python loop runs once per
wake-up, and its own overhead is counted in the difference."""
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from qhost import DEFAULT_EXT, Host  # noqa: E402
from test_lifecycle import Proc  # noqa: E402

SECONDS = float(os.environ.get("LAG_BENCH_SECONDS", "3"))
INTERVAL = 0.001          # 1,000 probes a second, to make each one measurable


def run(q, qprom, interval):
    proc = Proc(q, qprom)
    proc.init({"lagProbe": interval, "queueTopN": 0})
    rows0 = count(q, qprom)
    t0, cpu0, ru0 = time.monotonic(), time.thread_time(), resource.getrusage(resource.RUSAGE_SELF)
    while time.monotonic() - t0 < SECONDS:
        q.poll(50)
    main = time.thread_time() - cpu0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    proc_cpu = (ru.ru_utime + ru.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    probes = count(q, qprom) - rows0
    proc.restore()
    return main, proc_cpu, probes


def count(q, qprom):
    rows = qprom.call("qprom_metrics", q.identity())
    for m, v in zip(rows["metric"], rows["val"]):
        if m == "kdb_event_loop_lag_seconds":
            return v["count"]
    return 0


def main():
    q = Host.get()
    qprom = q.load(os.environ.get("QPROM_SO", DEFAULT_EXT))
    idle_main, idle_proc, _ = run(q, qprom, 0)
    main_cpu, proc_cpu, probes = run(q, qprom, INTERVAL)
    per_probe_main = max(main_cpu - idle_main, 0.0) / max(probes, 1)
    per_probe_all = max(proc_cpu - idle_proc, 0.0) / max(probes, 1)
    print(f"lag probe: {probes} probes in {SECONDS:.0f} s at {INTERVAL * 1e3:.0f} ms "
          f"(one outstanding at a time)")
    print(f"  q's main thread: {main_cpu * 1e3:.1f} ms CPU with probes, {idle_main * 1e3:.1f} ms without: "
          f"{per_probe_main * 1e6:.2f} us per probe")
    print(f"  whole process (probe thread too): {per_probe_all * 1e6:.2f} us per probe")
    print(f"  at the default 1 s interval: {per_probe_main * 3600 * 1e3:.2f} ms of q's main thread per hour "
          f"({per_probe_all * 3600 * 1e3:.2f} ms for the process), "
          f"{per_probe_main / 1.0 * 100:.5f}% of one core")


if __name__ == "__main__":
    main()
