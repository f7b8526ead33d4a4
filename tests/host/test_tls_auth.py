"""TLS and basic auth on the listener: the real .so in the stand-in host, a real
Prometheus scraping over TLS with basic_auth, and the refusals.

Certificates are made per test session with Debian's openssl (a CA, a server
certificate for 127.0.0.1/localhost, a client certificate); bcrypt hashes with libxcrypt
through Python's crypt module (the `$2b$` that htpasswd's `$2y$` is equivalent to), at
cost 4 so that each check costs ~1 ms. Clients are Python's ssl module (OpenSSL), an
implementation independent of the server's rustls.

Proved here:
* right credentials over TLS get the metrics; none, a wrong password, an unknown user, a
  malformed header get 401 with a Basic challenge, and are counted as 401 scrapes;
* plain HTTP to the TLS port gets a plain-text 400 and no metrics; a client that does
  not trust the CA, or asks for a protocol below tlsMinVersion, fails the handshake;
* with tlsClientCAFile, a client without a certificate is refused at the handshake and
  one with a certificate from that CA gets through;
* every bad TLS/auth setting fails qprom_start with its own message and starts nothing;
* a real Prometheus with `scheme: https`, `tls_config.ca_file` and `basic_auth` scrapes
  (up == 1, values stored), while the same Prometheus scraping with a wrong password, or
  with plain http, records up == 0 with the reason.
"""
from __future__ import annotations

import base64
import http.client
import socket
import ssl
import subprocess
import time
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # deprecated in 3.11 (gone in 3.13), still shipped: bcrypt via libxcrypt

import pytest

from qhost import QError
from promserver import PROMETHEUS, free_port as _free_port, run_prometheus

USER, PASSWORD = "prometheus", "s3cret:with colon"
OTHER, OTHER_PASSWORD = "alice", "wonderland"


def bcrypt_hash(password: str) -> str:
    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")

    def ossl(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=qprom test CA")
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                  "extendedKeyUsage=serverAuth\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for who in ("server", "server2", "client", "rogue"):
        ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{who}.key", "-out", f"{who}.csr", "-subj", f"/CN={who}")
    ossl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext")
    ossl("x509", "-req", "-in", "server2.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "server2.pem", "-days", "2", "-extfile", "server.ext")
    ossl("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "client.pem", "-days", "2", "-extfile", "client.ext")
    # a certificate from another CA, for the client-certificate refusal
    ossl("req", "-x509", "-key", "rogue.key", "-out", "rogue.pem", "-days", "2",
         "-subj", "/CN=rogue")
    return d


def start(q, qprom, **keys):
    names = ["port", "bind", "timeout", *keys]
    vals = [q.j(0), q.s("127.0.0.1"), q.f(5.0), *keys.values()]
    return qprom.call("qprom_start", q.dict(q.syms(names), q.knk(*vals)), None)


def users_dict(q, users):
    return q.dict(q.syms(list(users)), q.knk(*[q.string(h) for h in users.values()]))


@pytest.fixture
def metric(qprom):
    qprom.call("qprom_create", {"name": "tls_probe_total", "type": "counter", "help": "P."})
    qprom.call("qprom_inc", "tls_probe_total", None, 42)
    yield
    qprom.call("qprom_del", "tls_probe_total", None)


@pytest.fixture
def tls_listener(q, qprom, pki, metric):
    users = {USER: bcrypt_hash(PASSWORD), OTHER: bcrypt_hash(OTHER_PASSWORD)}
    port = start(q, qprom, tlsCertFile=q.string(str(pki / "server.pem")),
                 tlsKeyFile=q.s(":" + str(pki / "server.key")),   # a q file symbol works too
                 basicAuthUsers=users_dict(q, users))
    try:
        yield port
    finally:
        qprom.call("qprom_stop", None)


def client_ctx(pki, cert=None, maximum=None):
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if cert:
        ctx.load_cert_chain(str(pki / f"{cert}.pem"), str(pki / f"{cert}.key"))
    if maximum:
        ctx.maximum_version = maximum
    return ctx


def get(port, ctx, auth=None, raw_auth=None, path="/metrics"):
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
    headers = {}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(":".join(auth).encode()).decode()
    if raw_auth is not None:
        headers["Authorization"] = raw_auth
    try:
        c.request("GET", path, headers=headers)
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def scrapes(qprom, code):
    text = qprom.call("qprom_render", "text").decode()
    line = f'qprom_scrapes_total{{code="{code}"}} '
    hits = [ln for ln in text.splitlines() if ln.startswith(line)]
    return float(hits[0].split()[-1]) if hits else 0.0


def test_right_credentials_get_metrics_over_tls(q, qprom, pki, tls_listener):
    for user, pw in ((USER, PASSWORD), (OTHER, OTHER_PASSWORD)):
        status, headers, body = get(tls_listener, client_ctx(pki), auth=(user, pw))
        assert status == 200, body
        assert b"tls_probe_total 42" in body
    # the landing page is behind auth too
    assert get(tls_listener, client_ctx(pki), path="/")[0] == 401
    assert get(tls_listener, client_ctx(pki), auth=(USER, PASSWORD), path="/")[0] == 200


@pytest.mark.parametrize("auth,raw", [
    (None, None),
    ((USER, "wrong"), None),
    ((USER, PASSWORD + "x"), None),
    ((USER, ""), None),
    (("mallory", PASSWORD), None),
    ((OTHER, PASSWORD), None),                 # another user's password
    (None, "Bearer " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()),
    (None, "Basic !!!notbase64"),
    (None, "Basic " + base64.b64encode(USER.encode()).decode()),   # no colon
])
def test_refusals_get_401(q, qprom, pki, tls_listener, auth, raw):
    before = scrapes(qprom, 401)
    status, headers, body = get(tls_listener, client_ctx(pki), auth=auth, raw_auth=raw)
    assert status == 401
    assert headers.get("WWW-Authenticate", "").startswith("Basic realm=")
    assert b"tls_probe_total" not in body
    assert scrapes(qprom, 401) == before + 1


def test_plain_http_to_tls_port_is_refused(q, qprom, tls_listener):
    with socket.create_connection(("127.0.0.1", tls_listener), timeout=5) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    assert data.startswith(b"HTTP/1.0 400 Bad Request\r\n"), data
    assert data.endswith(b"Client sent an HTTP request to an HTTPS server.\n")
    assert b"tls_probe_total" not in data


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_untrusted_server_and_old_protocols_fail_the_handshake(q, qprom, pki, tls_listener):
    with pytest.raises(ssl.SSLCertVerificationError):
        get(tls_listener, ssl.create_default_context())   # system CAs only
    # TLS 1.2 is accepted by default...
    assert get(tls_listener, client_ctx(pki, maximum=ssl.TLSVersion.TLSv1_2),
               auth=(USER, PASSWORD))[0] == 200
    # ...and TLS 1.1 is not offered by rustls at all
    ctx = client_ctx(pki, maximum=ssl.TLSVersion.TLSv1_1)
    ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        get(tls_listener, ctx)


def test_min_version_tls13(q, qprom, pki, metric):
    port = start(q, qprom, tlsCertFile=q.string(str(pki / "server.pem")),
                 tlsKeyFile=q.string(str(pki / "server.key")), tlsMinVersion=q.s("TLS13"))
    try:
        assert get(port, client_ctx(pki))[0] == 200
        with pytest.raises(ssl.SSLError):
            get(port, client_ctx(pki, maximum=ssl.TLSVersion.TLSv1_2))
    finally:
        qprom.call("qprom_stop", None)


def test_client_certificates(q, qprom, pki, metric):
    port = start(q, qprom, tlsCertFile=q.string(str(pki / "server.pem")),
                 tlsKeyFile=q.string(str(pki / "server.key")),
                 tlsClientCAFile=q.string(str(pki / "ca.pem")))
    try:
        status, _, body = get(port, client_ctx(pki, cert="client"))
        assert status == 200 and b"tls_probe_total 42" in body
        # TLS 1.3: the server's verdict on the client certificate arrives after the
        # client's handshake completed, so it surfaces on the first read or write
        for cert in (None, "rogue"):
            with pytest.raises((ssl.SSLError, ConnectionResetError, http.client.RemoteDisconnected,
                                BrokenPipeError)):
                get(port, client_ctx(pki, cert=cert))
    finally:
        qprom.call("qprom_stop", None)


def served_cn(port, pki):
    ctx = client_ctx(pki)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            return dict(x[0] for x in s.getpeercert()["subject"])["commonName"]


def test_certificate_rotation_without_restart(q, qprom, pki, metric, tmp_path):
    """Files replaced under a running listener are picked up by new connections (checked
    at most once a second); a broken pair keeps the old certificate and counts an error."""
    import shutil
    cert, key = tmp_path / "tls.pem", tmp_path / "tls.key"
    shutil.copy(pki / "server.pem", cert)
    shutil.copy(pki / "server.key", key)
    port = start(q, qprom, tlsCertFile=q.string(str(cert)), tlsKeyFile=q.string(str(key)))

    def reloads(result):
        text = qprom.call("qprom_render", "text").decode()
        line = f'qprom_tls_reloads_total{{result="{result}"}} '
        return float(next(ln for ln in text.splitlines() if ln.startswith(line)).split()[-1])

    def until(what, fn, timeout=10.0):
        end = time.monotonic() + timeout
        while not fn():
            assert time.monotonic() < end, f"timed out waiting for {what}"
            q.poll(50)

    try:
        assert served_cn(port, pki) == "server"
        assert reloads("ok") == 0 and reloads("error") == 0
        # a certificate without its key: the old pair stays in use, the failure is counted
        shutil.copy(pki / "server2.pem", cert)
        until("a failed reload", lambda: served_cn(port, pki) == "server" and reloads("error") >= 1)
        # the key arrives: the next check rebuilds
        shutil.copy(pki / "server2.key", key)
        until("the new certificate", lambda: served_cn(port, pki) == "server2")
        assert reloads("ok") == 1
        assert get(port, client_ctx(pki))[0] == 200
    finally:
        qprom.call("qprom_stop", None)


@pytest.mark.parametrize("keys,msg", [
    ({"tlsCertFile": "server.pem"}, "prom: tls needs both tlsCertFile and tlsKeyFile"),
    ({"tlsKeyFile": "server.key"}, "prom: tls needs both tlsCertFile and tlsKeyFile"),
    ({"tlsCertFile": "missing.pem", "tlsKeyFile": "server.key"},
     "prom: tls certificate file unreadable or without a PEM certificate"),
    ({"tlsCertFile": "server.key", "tlsKeyFile": "server.key"},
     "prom: tls certificate file unreadable or without a PEM certificate"),
    ({"tlsCertFile": "server.pem", "tlsKeyFile": "missing.key"},
     "prom: tls key file unreadable, not a PEM private key, or not the certificate's key"),
    ({"tlsCertFile": "server.pem", "tlsKeyFile": "client.key"},
     "prom: tls key file unreadable, not a PEM private key, or not the certificate's key"),
    ({"tlsCertFile": "server.pem", "tlsKeyFile": "server.key", "tlsClientCAFile": "server.key"},
     "prom: tls client CA file unreadable or without a PEM certificate"),
])
def test_bad_tls_settings(q, qprom, pki, keys, msg):
    with pytest.raises(QError) as e:
        start(q, qprom, **{k: q.string(str(pki / v)) for k, v in keys.items()})
    assert str(e.value) == msg
    # nothing started: a listener can still start
    qprom.call("qprom_stop", None)
    port = start(q, qprom)
    qprom.call("qprom_stop", None)
    assert port > 0


def test_bad_settings_types(q, qprom, pki):
    bad = [
        {"tlsMinVersion": q.s("TLS11")},
        {"tlsCertFile": q.j(1)},
        {"tlsCertFile": q.string("")},
        {"basicAuthUsers": q.string("prometheus")},
        {"basicAuthUsers": q.dict(q.syms([]), q.knk())},
        {"basicAuthUsers": q.dict(q.syms([USER]), q.knk(q.j(1)))},
        {"maxConnections": q.j(0)},
        {"maxConnections": q.s("many")},
    ]
    msgs = []
    for keys in bad:
        with pytest.raises(QError) as e:
            start(q, qprom, **keys)
        msgs.append(str(e.value))
    assert msgs == ["prom: wrong type for a configuration key"] * 6 + [
        "prom: invalid http config (workers 1..64, timeouts > 0, request bytes >= 512, "
        "connections 1..65536)", "prom: wrong type for a configuration key"]


@pytest.mark.parametrize("password,msg", [
    ("plaintext", "prom: basic auth password must be a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters)"),
    ("cost 03", "prom: basic auth bcrypt cost must be 04 to 31"),   # a real hash, cost set to 03
])
def test_bad_hash_is_refused(q, qprom, password, msg):
    if password == "cost 03":
        h = bcrypt_hash(PASSWORD)                                    # $2b$04$<salt><digest>
        password = h[:4] + "03" + h[6:]
    with pytest.raises(QError) as e:
        start(q, qprom, basicAuthUsers=users_dict(q, {USER: password}))
    assert str(e.value) == msg


@pytest.mark.skipif(not PROMETHEUS.exists(), reason=f"{PROMETHEUS} missing")
def test_prometheus_scrapes_over_tls_with_basic_auth(q, qprom, pki, tls_listener, tmp_path):
    (tmp_path / "password").write_text(PASSWORD)
    target = f"['127.0.0.1:{tls_listener}']"
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(f"""global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: good
    scheme: https
    tls_config: {{ca_file: {pki / 'ca.pem'}}}
    basic_auth: {{username: {USER}, password_file: {tmp_path / 'password'}}}
    static_configs: [{{targets: {target}}}]
  - job_name: wrong_password
    scheme: https
    tls_config: {{ca_file: {pki / 'ca.pem'}}}
    basic_auth: {{username: {USER}, password: nope}}
    static_configs: [{{targets: {target}}}]
  - job_name: plain_http
    static_configs: [{{targets: {target}}}]
""")
    subprocess.run(["promtool", "check", "config", str(cfg)], check=True, capture_output=True)
    for api in run_prometheus(q, tmp_path, cfg, _free_port()):
        api.wait("the good job up", lambda: api.query('up{job="good"} == 1'), timeout=20)
        assert api.scalar('tls_probe_total{job="good"}') == 42
        # and the refused ones are down, for the right reason
        def down_with(job, reason):
            ts = api.api("/api/v1/targets")["activeTargets"]
            t = [t for t in ts if t["labels"]["job"] == job]
            return t and t[0]["health"] == "down" and reason in t[0]["lastError"] and t
        api.wait("wrong_password down with 401",
                 lambda: down_with("wrong_password", "401"), timeout=20)
        api.wait("plain_http down with 400",
                 lambda: down_with("plain_http", "400"), timeout=20)
        assert api.query('up{job="wrong_password"} == 0')
        assert api.query('up{job="plain_http"} == 0')
        assert not api.query('tls_probe_total{job="wrong_password"}')
