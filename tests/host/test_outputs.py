"""Files for other readers: qprom_write (node_exporter's textfile collector) and the
file_sd target file (qprom_sd_register / qprom_sd_remove), through the real .so.

* qprom_write: the file parses with prometheus_client's text parser (no timestamps),
  passes `promtool check metrics`, is replaced atomically (a reader racing many writes
  never sees a partial file; no `<path>.tmp.<pid>` is left; a write that fails leaves
  the old file as it was), and bad paths get their exact errors.
* A real node_exporter (textfile collector only) re-exports a file we wrote.
* A real Prometheus with file_sd_configs discovers two listeners, one in this host and
  one in a child process (the .so runs one listener per process), each registered by
  qprom_sd_register; when the child stops (qprom_sd_remove, as .prom.stop does) its JSON
  is gone and so is its target.

A clean registry is needed where a strict reader sees the whole registry (promtool,
node_exporter): that file is written by a child process (this module run as a script),
since the host's registry is shared by every test of the session. Waits are bounded
polling of the readers' HTTP APIs.
"""
import json
import re
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from qhost import QError

HERE = Path(__file__).resolve().parent
PROMETHEUS = Path(os.environ.get("QPROM_PROMETHEUS", "/usr/bin/prometheus"))
PROMTOOL = Path("/usr/bin/promtool")
NODE_EXPORTER = Path(os.environ.get("QPROM_NODE_EXPORTER", "/usr/bin/prometheus-node-exporter"))

E_SUFFIX = "prom: file name must end in .prom (node_exporter reads only *.prom)"
E_NODIR = "prom: directory does not exist"
E_NOTWRITABLE = "prom: directory is not writable"
E_WRITE = "prom: could not write the file"
E_PATHTYPE = "prom: path must be a symbol or string"
E_TARGET = "prom: file_sd target must be host:port (port 1-65535)"
E_LABELS = "prom: file_sd labels must be a dictionary of symbols or strings"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url, timeout=2):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def _wait(what, fn, timeout, proc=None, log=None, q=None):
    """fn() until truthy; bounded; services the host's event loop between tries."""
    end = time.monotonic() + timeout
    last = None
    while True:
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"{what}: reader exited ({proc.returncode}):\n"
                        f"{log.read_text()[-2000:] if log else ''}")
        try:
            last = fn()
        except OSError as e:
            last = e
        else:
            if last:
                return last
        if time.monotonic() > end:
            pytest.fail(f"timed out after {timeout}s waiting for {what} (last: {last!r})\n"
                        f"{log.read_text()[-2000:] if log else ''}")
        if q is not None:
            q.poll(50)
        else:
            time.sleep(0.05)


def _stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ---- the child process (this file run as a script) --------------------------------------

def _child_metrics(q, ext, prefix):
    ext.call("qprom_create", {"name": f"{prefix}_requests_total", "type": "counter",
                              "help": "Requests \\ \"quoted\"\nnext.", "labels": q.syms(["kind"])})
    ext.call("qprom_create", {"name": f"{prefix}_temperature_celsius", "type": "gauge",
                              "help": "Temperature."})
    ext.call("qprom_create", {"name": f"{prefix}_latency_seconds", "type": "histogram",
                              "help": "Latency.", "buckets": q.vec("f", [0.1, 1.0])})
    ext.call("qprom_inc", f"{prefix}_requests_total", q.syms(['a"b\\c']), 7)
    ext.call("qprom_set", f"{prefix}_temperature_celsius", None, -3.25)
    ext.call("qprom_obs", f"{prefix}_latency_seconds", None, q.vec("f", [0.05, 0.5, 5.0]))


def child(argv):
    sys.path.insert(0, str(HERE))
    from qhost import DEFAULT_EXT, Host
    q = Host.get()
    ext = q.load(Path(os.environ.get("QPROM_SO", DEFAULT_EXT)))
    mode = argv[0]
    if mode == "write":                     # write <path>: a clean registry, one file
        _child_metrics(q, ext, "child")
        ext.call("qprom_write", argv[1].encode())
        print("written", flush=True)
        return
    if mode == "serve":                     # serve <sd_dir>: listener + file_sd until stdin
        _child_metrics(q, ext, "child")
        cfg = q.dict(q.syms(["port", "bind"]), q.knk(q.j(0), q.s("127.0.0.1")))
        port = ext.call("qprom_start", cfg, None, check_refs=False)
        path = ext.call("qprom_sd_register", argv[1], f"127.0.0.1:{port}",
                        {"job": "kdb", "instance_name": "child", "host": "127.0.0.1",
                         "port": str(port)})
        print(port, path.decode(), flush=True)
        sys.stdin.readline()                # the test says stop (or closes stdin)
        removed = ext.call("qprom_sd_remove", None)   # what .prom.stop[] does first
        ext.call("qprom_stop", None)
        print("removed" if removed else "not-removed", flush=True)
        return
    raise SystemExit(f"unknown mode {mode}")


def _child_write(path: Path):
    r = subprocess.run([sys.executable, __file__, "write", str(path)], capture_output=True,
                       text=True, timeout=30, cwd=HERE.parents[1])
    assert r.returncode == 0 and r.stdout.strip() == "written", r.stdout + r.stderr


# ---- qprom_write ------------------------------------------------------------------------

def test_write_parses_without_timestamps(q, qprom, tmp_path):
    from prometheus_client.parser import text_string_to_metric_families
    qprom.call("qprom_create", {"name": "out_writes_total", "type": "counter",
                                "help": "Writes.", "labels": q.syms(["dir"])})
    qprom.call("qprom_inc", "out_writes_total", q.syms(["a b"]), 3)
    p = tmp_path / "x.prom"
    for arg in (q.s(":" + str(p)), q.string(str(p)), q.s(str(p))):
        p.unlink(missing_ok=True)
        assert qprom.call("qprom_write", arg) is None
        text = p.read_text()
        assert text.endswith("\n")
        fams = {f.name: f for f in text_string_to_metric_families(text)}
        assert fams["out_writes"].type == "counter"
        [s] = fams["out_writes"].samples
        assert (s.name, s.labels, s.value, s.timestamp) == ("out_writes_total", {"dir": "a b"}, 3.0, None)
        assert all(x.timestamp is None for f in fams.values() for x in f.samples)
        assert sorted(os.listdir(tmp_path)) == ["x.prom"]   # no temporary left


@pytest.mark.skipif(not PROMTOOL.exists(), reason=f"{PROMTOOL} missing (Debian's prometheus)")
def test_write_passes_promtool(tmp_path):
    p = tmp_path / "child.prom"
    _child_write(p)
    r = subprocess.run([str(PROMTOOL), "check", "metrics"], input=p.read_bytes(),
                       capture_output=True, timeout=30)
    assert r.returncode == 0, (r.stdout + r.stderr).decode() + p.read_text()
    assert b'child_requests_total{kind="a\\"b\\\\c"} 7\n' in p.read_bytes()
    assert os.listdir(tmp_path) == ["child.prom"]


def test_write_is_atomic(q, qprom, tmp_path):
    """A reader racing 200 rewrites of a ~100 KB file sees a whole file every time."""
    n = 1000
    qprom.call("qprom_create", {"name": "out_atomic_value", "type": "gauge",
                                "help": "Atomicity.", "labels": q.syms(["i"])})
    for i in range(n):
        qprom.call("qprom_set", "out_atomic_value", q.syms([f"s{i:04d}"]), float(i))
    p = tmp_path / "atomic.prom"
    qprom.call("qprom_write", str(p).encode())
    done, seen, bad, versions = threading.Event(), [0], [], set()

    def reader():
        while not done.is_set():
            t = p.read_text()
            seen[0] += 1
            lines = [ln for ln in t.splitlines() if ln.startswith("out_atomic_value{")]
            if not t.endswith("\n") or len(lines) != n:
                bad.append((len(t), len(lines), t[-80:]))
            versions.update(ln for ln in lines if ln.startswith('out_atomic_value{i="s0000"}'))

    th = threading.Thread(target=reader)
    th.start()
    try:
        for w in range(200):
            qprom.call("qprom_set", "out_atomic_value", q.syms(["s0000"]), float(w))
            qprom.call("qprom_write", str(p).encode())
    finally:
        done.set()
        th.join()
    assert not bad, bad[:3]
    # the race happened: the reader read while the file was being replaced (it saw
    # several of the 200 versions, each whole)
    assert len(versions) > 1, (seen[0], versions)
    assert 'out_atomic_value{i="s0000"} 199\n' in p.read_text()
    assert os.listdir(tmp_path) == ["atomic.prom"]


def test_failed_write_leaves_the_old_file(q, qprom, tmp_path):
    """The bytes go to <path>.tmp.<pid> first: if that cannot be written, <path> keeps
    its old content and nothing is left behind."""
    p = tmp_path / "keep.prom"
    p.write_text("old 1\n")
    blocker = tmp_path / f"keep.prom.tmp.{os.getpid()}"
    blocker.mkdir()                     # a directory where the temporary file must go
    with pytest.raises(QError, match=f"^{E_WRITE}$"):
        qprom.call("qprom_write", str(p).encode())
    assert p.read_text() == "old 1\n"
    assert sorted(os.listdir(tmp_path)) == ["keep.prom", blocker.name]


def test_write_errors(q, qprom, tmp_path):
    cases = [
        (str(tmp_path / "x.txt").encode(), E_SUFFIX),
        (str(tmp_path / "x.prom.tmp").encode(), E_SUFFIX),
        (str(tmp_path / ".prom").encode(), E_SUFFIX),
        (str(tmp_path) .encode() + b"/", E_SUFFIX),
        (b"", E_SUFFIX),
        (str(tmp_path / "missing" / "x.prom").encode(), E_NODIR),
        (q.s(":" + str(tmp_path / "missing" / "x.prom")), E_NODIR),
        (str(tmp_path / "x.prom" / "y.prom").encode(), E_NODIR),
        (5, E_PATHTYPE),
        (None, E_PATHTYPE),
        (q.syms(["a.prom"]), E_PATHTYPE),
    ]
    (tmp_path / "x.prom").write_text("")   # a file, used as a directory above
    for arg, msg in cases:
        with pytest.raises(QError, match=f"^{re.escape(msg)}$"):
            qprom.call("qprom_write", arg)
    # not writable: a read-only directory (root ignores modes: /sys refuses even root)
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        target = ro / "x.prom"
    elif os.path.isdir("/sys"):
        target = Path("/sys/qprom-test.prom")
    else:
        target = None
    if target is not None:
        with pytest.raises(QError, match=f"^{E_NOTWRITABLE}$"):
            qprom.call("qprom_write", str(target).encode())
        assert not target.exists()


def test_sd_register_errors_and_file(q, qprom, tmp_path):
    d = str(tmp_path)
    for target, labels, msg in [
        ("nohost", None, E_TARGET), ("h:0", None, E_TARGET), ("h:65536", None, E_TARGET),
        ("a b:1", None, E_TARGET), (5, None, E_TARGET),
        ("h:1", {"__scheme__": "https"}, "prom: reserved label name"),
        ("h:1", {"1a": "x"}, "prom: invalid label name"),
        ("h:1", {"a": 1}, E_LABELS), ("h:1", 7, E_LABELS),
    ]:
        with pytest.raises(QError, match=f"^{re.escape(msg)}$"):
            qprom.call("qprom_sd_register", d, target, labels)
    with pytest.raises(QError, match=f"^{E_NODIR}$"):
        qprom.call("qprom_sd_register", d + "/missing", "h:1", None)
    assert os.listdir(tmp_path) == []
    path = qprom.call("qprom_sd_register", q.s(":" + d), "db-1.example:5010",
                      {"job": "kdb", "instance_name": b'tp "1"', "host": "db-1.example",
                       "port": b"5010"})
    assert path == str(tmp_path / "qprom-db-1.example-5010.json").encode()
    doc = json.loads(Path(path.decode()).read_text())
    assert doc == [{"targets": ["db-1.example:5010"],
                    "labels": {"job": "kdb", "instance_name": 'tp "1"', "host": "db-1.example",
                               "port": "5010"}}]
    assert qprom.call("qprom_sd_remove", None) is True
    assert qprom.call("qprom_sd_remove", None) is False
    assert os.listdir(tmp_path) == []


# ---- node_exporter ------------------------------------------------------------------------

@pytest.mark.skipif(not NODE_EXPORTER.exists(),
                    reason=f"{NODE_EXPORTER} missing: add prometheus-node-exporter to DEPS_EXTRA_APT")
def test_node_exporter_reexports_the_textfile(tmp_path):
    tf = tmp_path / "textfile"
    tf.mkdir()
    _child_write(tf / "qprom.prom")
    port = _free_port()
    log = tmp_path / "node_exporter.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(NODE_EXPORTER), f"--web.listen-address=127.0.0.1:{port}",
             "--collector.disable-defaults", "--collector.textfile",
             f"--collector.textfile.directory={tf}", "--web.disable-exporter-metrics"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        from prometheus_client.parser import text_string_to_metric_families
        body = _wait("node_exporter /metrics", lambda: _get(f"http://127.0.0.1:{port}/metrics"),
                     timeout=15, proc=proc, log=log).decode()
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for f in text_string_to_metric_families(body) for s in f.samples}
        assert samples[("node_textfile_scrape_error", ())] == 0, body
        assert samples[("child_requests_total", (("kind", 'a"b\\c'),))] == 7
        assert samples[("child_temperature_celsius", ())] == -3.25
        buckets = {float(dict(lb)["le"]): v for (n, lb), v in samples.items()
                   if n == "child_latency_seconds_bucket"}
        assert buckets == {0.1: 1, 1.0: 2, float("inf"): 3}
        assert samples[("child_latency_seconds_count", ())] == 3
    finally:
        _stop(proc)


# ---- file_sd + Prometheus -----------------------------------------------------------------

@pytest.mark.skipif(not PROMETHEUS.exists(), reason=f"{PROMETHEUS} missing (Debian's prometheus)")
def test_prometheus_file_sd_discovers_and_drops(q, qprom, tmp_path):
    sd = tmp_path / "sd"
    sd.mkdir()
    cfg = q.dict(q.syms(["port", "bind"]), q.knk(q.j(0), q.s("127.0.0.1")))
    port = qprom.call("qprom_start", cfg, None, check_refs=False)
    child_proc = None
    prom = None
    try:
        mine = qprom.call("qprom_sd_register", str(sd), f"127.0.0.1:{port}",
                          {"job": "kdb", "instance_name": "main", "host": "127.0.0.1",
                           "port": str(port)})
        child_proc = subprocess.Popen([sys.executable, __file__, "serve", str(sd)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, cwd=HERE.parents[1])
        line = child_proc.stdout.readline().split()
        assert line, child_proc.stderr.read()
        child_port, child_file = int(line[0]), Path(line[1])
        assert child_file.exists() and child_file != Path(mine.decode())

        pport = _free_port()
        (tmp_path / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: qprom_sd\n    file_sd_configs:\n"
            f"      - files: ['{sd}/*.json']\n        refresh_interval: 1s\n")
        log = tmp_path / "prometheus.log"
        with open(log, "wb") as out:
            prom = subprocess.Popen(
                [str(PROMETHEUS), f"--config.file={tmp_path / 'prometheus.yml'}",
                 f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{pport}", "--log.level=warn"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
        base = f"http://127.0.0.1:{pport}"

        def targets():
            doc = json.loads(_get(f"{base}/api/v1/targets?state=active"))
            return {t["labels"]["instance"]: t for t in doc["data"]["activeTargets"]
                    if t["scrapePool"] == "qprom_sd"}

        both = {f"127.0.0.1:{port}", f"127.0.0.1:{child_port}"}
        ts = _wait("both targets up", lambda: (lambda t: t if set(t) == both and all(
            x["health"] == "up" for x in t.values()) else None)(targets()),
            timeout=25, proc=prom, log=log, q=q)
        assert ts[f"127.0.0.1:{port}"]["labels"] == {
            "instance": f"127.0.0.1:{port}", "job": "kdb", "instance_name": "main",
            "host": "127.0.0.1", "port": str(port)}
        assert ts[f"127.0.0.1:{child_port}"]["labels"]["instance_name"] == "child"

        # the child stops as .prom.stop does: its file goes, then its target
        child_proc.stdin.write("stop\n")
        child_proc.stdin.flush()
        assert child_proc.stdout.readline().strip() == "removed"
        assert child_proc.wait(timeout=10) == 0
        assert not child_file.exists()
        _wait("the child's target dropped",
              lambda: set(targets()) == {f"127.0.0.1:{port}"}, timeout=25, proc=prom, log=log, q=q)
    finally:
        if child_proc is not None and child_proc.poll() is None:
            _stop(child_proc)
        if prom is not None:
            _stop(prom)
            shutil.rmtree(tmp_path / "tsdb", ignore_errors=True)
        qprom.call("qprom_sd_remove", None)
        qprom.call("qprom_stop", None)
    assert os.listdir(sd) == []


if __name__ == "__main__":
    child(sys.argv[1:])
