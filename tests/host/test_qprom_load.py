"""The real extension ($QPROM_SO) loads into the host with every q API reference bound
where q would bind it. Skipped until the .so is built."""
from test_host import Q_ONLY

# what libe.so or the shim provide; anything else from q's API would not resolve in q
# either without q, and RTLD_NOW would have refused to load the .so
Q_API = Q_ONLY | {"sd0x", "vak", "ktn", "ka", "kb", "kg", "kh", "ki", "kj", "ke", "kf", "kc",
                  "ks", "kp", "kpn", "ku", "ktj", "kd", "kt", "kz", "knk", "knt", "xD", "xT",
                  "ktd", "ja", "js", "jk", "jv", "r0", "r1", "b9", "d9", "okx", "ss", "sn",
                  "m9", "setm", "ymd", "dj"}


def test_q_api_references_bind_to_shim_or_libe(q, qprom):
    b = q.bindings(qprom)
    used = {s: f for s, f in b.items() if s in Q_API}
    assert used, "the extension imports no q API symbol?"
    for sym, f in used.items():
        want = q.shim_path if sym in Q_ONLY or sym in ("sd0x", "vak") else q.libe_path
        assert f == str(want), f"{sym} bound to {f}, want {want}"
