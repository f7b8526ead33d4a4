"""`.prom.init` / `.prom.stop` as the library decides them (src/ffi/lifecycle.rs).

q/prom.q passes qprom_init the 12 handlers' `(defined;value)` pairs and one wrapper per
handler, and assigns what init returns; it passes qprom_restore the pairs again and
assigns or expunges what restore returns. Here the "handlers" are ordinary K objects:
what matters is which object init keeps, returns and later recognises.

Every failing init must leave the process as it was: no state (a later init works), no
new families, no listener, no file_sd file.
"""
import json
import os
import socket

import pytest
from qhost import QError

ZS = [".z.pg", ".z.ps", ".z.ph", ".z.pp", ".z.ws", ".z.ts", ".z.po", ".z.pc", ".z.wo", ".z.wc", ".z.pw", ".z.exit"]
# wrapped when undefined: all but pp ws ts pw (defining them changes q; ts has nothing to observe)
UNDEFINED_WRAPPED = [".z.pg", ".z.ps", ".z.ph", ".z.po", ".z.pc", ".z.wo", ".z.wc", ".z.exit"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _refused(port) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


class Proc:
    """A stand-in q process: its .z handlers (None = undefined) and what prom.q does."""

    def __init__(self, q, ext, defined=None):
        self.q, self.ext = q, ext
        self.z = {z: None for z in ZS}
        for name in defined or []:
            self.z[name] = q.string(f"user {name}")
        self.wrappers = {z: q.string(f"wrapper of {z}") for z in ZS}

    def cur(self):
        q = self.q
        return q.knk(*[q.knk(q.b(v is not None), v if v is not None else q.identity()) for v in self.z.values()])

    def env(self, **over):
        q = self.q
        e = {"w": q.dict(q.syms(["used", "heap", "peak"]), q.vec("j", [1000, 67108864, 67108864])),
             "conns": q.j(2), "host": q.s("kdbhost"), "qport": q.i(5000), "script": q.s("/opt/tp/tick.q"),
             "k": q.d(8917), "K": q.f(4.1), "o": q.s("l64"), "c": q.i(8),
             "l": q.knk(q.string(""), q.string("2027.01.01"), q.string("2027.01.01"))}
        e.update(over)
        return q.dict(q.syms(list(e)), q.knk(*e.values()))

    def init(self, cfg=None, env=None, pollfn=None):
        q = self.q
        cfg = q.identity() if cfg is None else (cfg if not isinstance(cfg, dict) else q.k(cfg))
        r = self.ext.call_k("qprom_init", cfg, self.cur(), q.knk(*self.wrappers.values()),
                            env or self.env(), pollfn or q.identity(), check_refs=False)
        # what prom.q does: z[i] set f[i]
        zs = _field(r, "z")
        fs = _items(q, r, "f")
        assert len(zs) == len(fs)
        for name, f in zip(zs, fs):
            self.z[name] = f
        return r, zs, fs

    def restore(self):
        q = self.q
        r = self.ext.call_k("qprom_restore", self.cur(), check_refs=False)
        sets, tos, exps = _field(r, "set"), _items(q, r, "to"), _field(r, "expunge")
        for name, v in zip(sets, tos):
            self.z[name] = v
        for name in exps:
            self.z[name] = None
        return sets, tos, exps


def _dict(r):
    return r.py()


def _field(r, key):
    return r.py()[key]


def _items(q, r, key):
    """The K objects of a general-list field, as borrowed pointers wrapped (r1'd)."""
    from qhost import K
    import ctypes
    # r: keys (symbols) ! values (general list); locate the field by position
    names = list(_dict(r).keys())
    vals_ptr = ctypes.c_void_p.from_address(r.ptr + 16 + 8).value
    field_ptr = ctypes.c_void_p.from_address(vals_ptr + 16 + 8 * names.index(key)).value
    n = ctypes.c_int64.from_address(field_ptr + 8).value
    t = ctypes.c_int8.from_address(field_ptr + 2).value
    if n == 0:
        return []
    assert t == 0, f"{key} is not a general list"
    return [K(q, ctypes.c_void_p.from_address(field_ptr + 16 + 8 * i).value, owned=False) for i in range(n)]


def _families(q, ext):
    return set(ext.call("qprom_meta", q.identity())["metric"])


def test_fresh_q_init_wraps_every_handler_q_defines_a_default_for(q, qprom, proc):
    r, zs, fs = proc.init()
    assert zs == UNDEFINED_WRAPPED
    # f[i] is the very object prom.q built for that handler (so restore can recognise it)
    assert [f.ptr for f in fs] == [proc.wrappers[z].ptr for z in zs]
    d = _dict(r)
    assert d["port"] is None and d["inflight"] is False and d["mw"] is False
    sets, tos, exps = proc.restore()
    assert sets == [] and tos == []
    assert exps == UNDEFINED_WRAPPED
    assert all(v is None for v in proc.z.values())


def test_defined_handlers_are_wrapped_and_restored_to_the_same_object(q, qprom, proc):
    for z in ZS:
        proc.z[z] = q.string(f"user {z}")
    originals = {z: proc.z[z].ptr for z in ZS}
    _, zs, _ = proc.init()
    assert zs == ZS
    sets, tos, exps = proc.restore()
    assert sets == ZS and exps == []
    assert {z: proc.z[z].ptr for z in ZS} == originals


def test_references_are_kept_while_running_and_released_by_restore(q, qprom, proc):
    proc.z[".z.pg"] = orig = q.string("user pg")
    w = proc.wrappers[".z.pg"]
    r0_orig, r0_w = orig.r, w.r
    r, zs, fs = proc.init()
    del fs
    r.free()
    # one reference kept by the library for each; w also by proc.z, as q's .z.pg would
    assert orig.r == r0_orig + 1 and w.r == r0_w + 2
    proc.restore()
    assert proc.z[".z.pg"].ptr == orig.ptr
    assert w.r == r0_w


def test_a_handler_replaced_after_init_is_left_alone(q, qprom, proc):
    proc.z[".z.pg"] = q.string("user pg")
    proc.init()
    mine = q.string("replaced by the user")
    proc.z[".z.ps"] = mine
    sets, _, exps = proc.restore()
    assert ".z.ps" not in sets + exps and proc.z[".z.ps"].ptr == mine.ptr
    assert ".z.pg" in sets


def test_an_equal_copy_of_the_wrapper_still_counts_as_ours(q, qprom, proc):
    proc.init()
    proc.z[".z.pg"] = q.string("wrapper of .z.pg")      # another object, same value
    _, _, exps = proc.restore()
    assert ".z.pg" in exps


def test_init_twice_changes_nothing_and_returns_the_port(q, qprom, proc):
    port = _free_port()
    r1, zs1, _ = proc.init({"port": port, "bind": "127.0.0.1"})
    assert _field(r1, "port") == port and zs1
    r2, zs2, fs2 = proc.init({"port": port, "bind": "127.0.0.1"})
    assert _field(r2, "port") == port and zs2 == [] and fs2 == []
    proc.restore()
    assert _refused(port)


def test_duplicate_handlers_are_refused_and_change_nothing(q, qprom, proc):
    before = _families(q, qprom)
    for bad in ({"handlers": q.syms(["pg", "pg"])}, {"handlers": q.syms(["pg", "xx"])},
                {"handlers": q.string("pg")}):
        with pytest.raises(QError, match="^prom: handlers must be distinct symbols among pg ps ph pp ws ts po pc wo wc pw$"):
            proc.init(bad)
    assert _families(q, qprom) == before
    _, zs, _ = proc.init({"handlers": q.syms(["pg", "ps"]), "defaults": False})
    assert zs == [".z.pg", ".z.ps", ".z.exit"]


@pytest.mark.parametrize("cfg,msg", [
    ("notadict", "prom: configuration must be a dictionary"),
    (7, "prom: configuration must be a dictionary"),
    ({"nope": 1}, "prom: unknown configuration key"),
    ({"port": "x"}, "prom: wrong type for a configuration key"),
    ({"defaults": 1}, "prom: wrong type for a configuration key"),
    ({"limit": 0}, "prom: series limit must be >= 1"),
    ({"naming": "klingon"}, None),
    ({"fileSd": 5}, "prom: fileSd must be a directory, or a dictionary with `dir and optional `labels"),
    # refused by a step after the series limit was set: the limit goes back too
    ({"limit": 77, "sizes": True, "sizeBuckets": [2.0, 1.0]}, "prom: buckets must be finite, sorted and unique"),
    ({"limit": 77, "naming": "kx", "quantiles": [0.9, 0.5]}, "prom: quantiles must be in [0,1], sorted and unique"),
    ({"workers": 0, "port": 0}, "prom: invalid http config (workers 1..64, timeouts > 0, request bytes >= 512, connections 1..65536)"),
])
def test_bad_configurations_change_nothing(q, qprom, proc, cfg, msg):
    before = _families(q, qprom)
    limit_before = _field_meta_limit(q, qprom)
    with pytest.raises(QError) as e:
        proc.init(q.k(cfg) if not isinstance(cfg, dict) else cfg)
    if msg:
        assert e.value.msg == msg
    assert e.value.msg.startswith("prom: ")
    assert _families(q, qprom) == before
    assert _field_meta_limit(q, qprom) == limit_before
    assert all(v is None for v in proc.z.values())
    _, zs, _ = proc.init()          # not left half-initialised
    assert zs == UNDEFINED_WRAPPED


def _field_meta_limit(q, qprom):
    """The default series limit, probed by creating and deleting a metric."""
    qprom.call("qprom_create", q.k({"name": "lifecycle_probe_total", "type": "counter"}))
    m = qprom.call("qprom_meta", q.identity())
    lim = [row["limit"] for row in m.rows() if row["metric"] == "lifecycle_probe_total"][0]
    qprom.call("qprom_del", q.s("lifecycle_probe_total"), q.identity())
    return lim


def test_listener_failure_undoes_the_families_and_the_limit(q, qprom, proc):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        before = _families(q, qprom)
        with pytest.raises(QError, match="^prom: port in use$"):
            proc.init({"port": port, "bind": "127.0.0.1", "limit": 77, "inflight": True})
        assert _families(q, qprom) == before
        assert _field_meta_limit(q, qprom) != 77
    _, zs, _ = proc.init()
    assert zs


def test_file_sd_failure_stops_the_listener_it_started(q, qprom, proc, tmp_path):
    port = _free_port()
    before = _families(q, qprom)
    with pytest.raises(QError, match="^prom: directory does not exist$"):
        proc.init({"port": port, "bind": "127.0.0.1", "fileSd": str(tmp_path / "missing")})
    assert _refused(port)
    assert _families(q, qprom) == before
    r, _, _ = proc.init({"port": port, "bind": "127.0.0.1"})    # the port is free again
    assert _field(r, "port") == port


def test_file_sd_uses_the_absolute_q_port_in_multithreaded_mode(q, qprom, proc, tmp_path):
    proc.init({"fileSd": str(tmp_path), "defaults": False}, env=proc.env(qport=q.i(-5000)))
    files = list(tmp_path.glob("*.json"))
    assert len(files) == 1
    doc = json.loads(files[0].read_text())
    assert doc[0]["targets"] == ["kdbhost:5000"]
    assert doc[0]["labels"] == {"job": "kdb", "instance_name": "tick.q", "host": "kdbhost", "port": "5000"}
    proc.restore()
    assert list(tmp_path.glob("*.json")) == []


def test_file_sd_labels_replace_and_add(q, qprom, proc, tmp_path):
    sd = q.dict(q.syms(["dir", "labels"]), q.knk(q.string(str(tmp_path)),
                q.dict(q.syms(["job", "env"]), q.knk(q.string("tp"), q.string("prod")))))
    proc.init({"fileSd": sd, "defaults": False})
    doc = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert doc[0]["labels"]["job"] == "tp" and doc[0]["labels"]["env"] == "prod"


def test_no_port_anywhere_is_refused_for_file_sd(q, qprom, proc, tmp_path):
    with pytest.raises(QError, match=r"^prom: file_sd target must be host:port \(port 1-65535\)$"):
        proc.init({"fileSd": str(tmp_path)}, env=proc.env(qport=q.i(0)))
    assert list(tmp_path.glob("*")) == []


@pytest.mark.parametrize("path", ["/metrics", "metrics", "/m"])
@pytest.mark.parametrize("as_symbol", [True, False])
def test_symbol_or_string_path_and_bind(q, qprom, proc, path, as_symbol):
    v = q.s(path) if as_symbol else q.string(path)
    b = q.s("127.0.0.1") if as_symbol else q.string("127.0.0.1")
    port = _free_port()
    # every value a symbol: the dictionary q would build is a symbol vector
    cfg = q.dict(q.syms(["path", "bind"]), q.syms([path, "127.0.0.1"])) if as_symbol else {"path": v, "bind": b}
    proc.init(cfg)
    want = path.lstrip("/")
    assert qprom.call("qprom_path", q.identity()) == want.encode()
    assert qprom.call("qprom_is_metrics", q.string(want)) is True
    assert qprom.call("qprom_is_metrics", q.string(want + "?x=1")) is True
    assert qprom.call("qprom_is_metrics", q.string("other")) is False
    proc.restore()
    assert qprom.call("qprom_path", q.identity()) == b"metrics"
    # with a port too
    proc.init({"path": v, "bind": b, "port": port})
    import urllib.request
    assert urllib.request.urlopen(f"http://127.0.0.1:{port}/{want}", timeout=5).status == 200


def test_kdb_info_from_the_environment(q, qprom, proc):
    proc.init()
    text = qprom.call("qprom_render", q.s("text")).decode()
    line = [l for l in text.splitlines() if l.startswith("kdb_info{")][0]
    assert 'release="2024.05.31"' in line and 'version="4.1"' in line and 'os="l64"' in line
    assert 'cores="8"' in line and 'licence_expiry="2027.01.01"' in line
    assert "kdb_connections_open{protocol=\"ipc\"} 2" in text


def test_hook_errors_are_counted_before_init(q, qprom):
    qprom.call("qprom_hook_error", q.s("after_pg"))
    qprom.call("qprom_hook_error", q.s("after_pg"))
    assert qprom.call("qprom_get", q.s("qprom_hook_errors_total"), q.s("after_pg")) >= 2.0
    n = qprom.call("qprom_get", q.s("qprom_hook_errors_total"), q.s("after_pg"))
    qprom.call("qprom_hook_error", q.string("after_pg"))
    assert qprom.call("qprom_get", q.s("qprom_hook_errors_total"), q.s("after_pg")) == n + 1
    with pytest.raises(QError, match="^prom: metric name must be a symbol or string$"):
        qprom.call("qprom_hook_error", q.j(1))


def test_restore_needs_the_twelve_pairs(q, qprom):
    for bad in (q.identity(), q.knk(q.j(1)), q.knk(*[q.knk(q.j(1), q.j(2))] * 12)):
        with pytest.raises(QError, match=r"^prom: internal: prom.q passed malformed handler state \(reload prom.q\)$"):
            qprom.call("qprom_restore", bad)


def _opts(q, **kv):
    """.Q.opt .z.x: option -> list of words."""
    return q.dict(q.syms(list(kv)), q.knk(*[q.knk(*[q.string(w) for w in v.split(" ")]) for v in kv.values()]))


def test_cli_parses_every_key(q, qprom, tmp_path):
    pw = tmp_path / "users"
    pw.write_text("prometheus:$2y$04$jDXhD9qA6L9kiCdn.MRC3eZBr12H2sxJbxCAU5StjrollXXpUnlVW\n\n")
    opts = {"p": "5000", "prom.port": "9612", "prom.bind": "127.0.0.1", "prom.path": "/m",
            "prom.workers": "2", "prom.maxInFlight": "3", "prom.timeout": "1.5",
            "prom.maxRequestBytes": "4096", "prom.pollTimeout": "0.25", "prom.gzip": "0",
            "prom.processMetrics": "1", "prom.maxConnections": "64", "prom.tlsCertFile": "c.pem",
            "prom.tlsKeyFile": "k.pem", "prom.tlsClientCAFile": "ca.pem", "prom.tlsMinVersion": "TLS13",
            "prom.basicAuthUsers": str(pw), "prom.inflight": "1", "prom.sizes": "1b",
            "prom.sizeBuckets": "100,1000", "prom.httpStatus": "true", "prom.user": "no",
            "prom.functions": "upd,query", "prom.naming": "kx", "prom.buckets": "0.1,1,10",
            "prom.quantiles": "0.5,0.9", "prom.maxAge": "600", "prom.handlers": "pg,ps,ts",
            "prom.limit": "5000", "prom.defaults": "1", "prom.fileSd": "/var/lib/sd",
            "prom.nativeHistograms": "1", "prom.exemplars": "yes"}
    r = _dict(qprom.call_k("qprom_cli", _opts(q, **opts)))
    assert r["unknown"] == [] and r["noinit"] is False
    cfg = r["cfg"]
    cfg = dict(zip(cfg.keys(), cfg.values()))
    assert cfg["port"] == 9612 and cfg["timeout"] == 1.5 and cfg["gzip"] is False
    assert cfg["path"] == b"/m" and cfg["tlsMinVersion"] == "TLS13" and cfg["naming"] == "kx"
    assert list(cfg["buckets"]) == [0.1, 1.0, 10.0] and list(cfg["handlers"]) == ["pg", "ps", "ts"]
    assert list(cfg["functions"]) == ["upd", "query"] and cfg["user"] is False
    users = cfg["basicAuthUsers"]
    assert list(users.keys()) == ["prometheus"]
    assert cfg["nativeHistograms"] is True and cfg["exemplars"] is True
    assert len(cfg) == 32          # every .prom.init key, none dropped


def test_cli_unknown_options_and_noinit(q, qprom):
    r = _dict(qprom.call_k("qprom_cli", _opts(q, **{"prom.nope": "1", "prom.noinit": "1", "x": "y"})))
    assert r["unknown"] == ["nope"] and r["noinit"] is True
    with pytest.raises(QError, match=r"^prom: bad value for a -prom.<key> option \(see exporter.q's header\)$"):
        qprom.call("qprom_cli", _opts(q, **{"prom.port": "abc"}))
    with pytest.raises(QError, match="^prom: basicAuthUsers file unreadable or without user:hash lines$"):
        qprom.call("qprom_cli", _opts(q, **{"prom.basicAuthUsers": "/nonexistent/users"}))
    r = _dict(qprom.call_k("qprom_cli", q.dict(q.knk(), q.knk())))       # .Q.opt of no options
    assert r["unknown"] == [] and r["noinit"] is False


def test_cli_output_is_accepted_by_init(q, qprom, proc):
    port = _free_port()
    r = qprom.call_k("qprom_cli", _opts(q, **{"prom.port": str(port), "prom.bind": "127.0.0.1",
                                              "prom.handlers": "pg,ps", "prom.inflight": "1"}))
    cfg = _items_dict(q, r, "cfg")
    res, zs, _ = proc.init(cfg)
    assert _field(res, "port") == port and _field(res, "inflight") is True
    assert zs == [".z.pg", ".z.ps", ".z.exit"]


def _items_dict(q, r, key):
    import ctypes
    from qhost import K
    names = list(_dict(r).keys())
    vals_ptr = ctypes.c_void_p.from_address(r.ptr + 16 + 8).value
    p = ctypes.c_void_p.from_address(vals_ptr + 16 + 8 * names.index(key)).value
    return K(q, p, owned=False)


def test_defaults_off_then_on_records_again(q, qprom, proc):
    """An init with defaults:0b must not make a later init take the default families for
    the user's (it would skip them, and the hooks would record nothing)."""
    proc.init({"defaults": False, "lagProbe": 0})
    w = q.dict(q.syms(["used", "heap"]), q.vec("j", [1, 2]))
    qprom.call("qprom_sample", w, q.j(777), q.identity())
    assert qprom.call("qprom_get", q.s("kdb_output_queue_bytes"), q.identity()) != 777.0, "recorded while off"
    proc.restore()
    r, _, _ = proc.init({"lagProbe": 0})
    qprom.call("qprom_sample", w, q.j(777), q.identity())
    assert qprom.call("qprom_get", q.s("kdb_output_queue_bytes"), q.identity()) == 777.0
